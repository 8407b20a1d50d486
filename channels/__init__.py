"""渠道活码 channel codes: the codes, the trigger on new follow relations, rotation and limits, stats, QR images."""
