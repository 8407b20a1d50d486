"""`{{ event.actor_label|actor_label }}`: an audit row's automation label in the reader's language."""

from django import template

from org.actors import actor_label_display

register = template.Library()


@register.filter(name="actor_label")
def actor_label(value: str) -> str:
    return actor_label_display(value or "")
