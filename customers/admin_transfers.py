"""Admin for transfers (离职继承 / 在职继承)."""
