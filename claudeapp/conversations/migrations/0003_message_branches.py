"""Messages form a tree: `parent` points at the message a turn follows, and the conversation's
`active_leaf` is the end of the branch on screen. Rows from before are one linear chain each."""

import django.db.models.deletion
from django.db import migrations, models

# Each message's parent is the one before it in its conversation (created_at, id), the leaf the last one.
LINK_CHAIN = """
UPDATE conversations_message AS m SET parent_id = chain.previous
FROM (
    SELECT id, LAG(id) OVER (PARTITION BY conversation_id ORDER BY created_at, id) AS previous
    FROM conversations_message
) AS chain
WHERE m.id = chain.id AND chain.previous IS NOT NULL;

UPDATE conversations_conversation AS c SET active_leaf_id = (
    SELECT m.id FROM conversations_message AS m WHERE m.conversation_id = c.id
    ORDER BY m.created_at DESC, m.id DESC LIMIT 1
);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0002_message_routing_decision"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="parent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="children",
                to="conversations.message",
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="thinking",
            field=models.TextField(blank=True, help_text="The model's (summarised) thinking, when it thought."),
        ),
        migrations.AddField(
            model_name="conversation",
            name="active_leaf",
            field=models.ForeignKey(
                blank=True,
                help_text="Last message of the branch on screen; the path to it is the context sent upstream.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="conversations.message",
            ),
        ),
        migrations.RunSQL(LINK_CHAIN, reverse_sql=migrations.RunSQL.noop),
    ]
