"""ReportBreakdownWeek: `ReportBreakdown` summed per server and week (Monday to Sunday), from the rows pulled so far.

The rebuild is portable (PostgreSQL and SQLite): the Mondays are computed here from the distinct
(server, day) pairs, and each server's week is one INSERT … SELECT … GROUP BY over its day rows,
the same statement the pulls run when they store a day.
"""

from datetime import timedelta

import django.db.models.deletion
from django.db import migrations, models


def rebuild_weeks(apps, schema_editor):
    Breakdown = apps.get_model("reporting", "ReportBreakdown")
    Week = apps.get_model("reporting", "ReportBreakdownWeek")
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    week, breakdown = quote(Week._meta.db_table), quote(Breakdown._meta.db_table)
    key, count = quote("key"), quote("count")
    pairs = Breakdown.objects.using(connection.alias).order_by().values_list("server_id", "day").distinct()
    weeks = sorted({(server_id, day - timedelta(days=day.weekday())) for server_id, day in pairs.iterator()})
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {week}")
        for server_id, monday in weeks:
            cursor.execute(
                f"INSERT INTO {week} (server_id, week_start, kind, dimension, {key}, {count})"
                f" SELECT server_id, %s, kind, dimension, {key}, SUM({count}) FROM {breakdown}"
                " WHERE server_id = %s AND day >= %s AND day <= %s"
                f" GROUP BY server_id, kind, dimension, {key}",
                [monday, server_id, monday, monday + timedelta(days=6)],
            )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("reporting", "0005_reports_pulls_alerts_digests"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReportBreakdownWeek",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("week_start", models.DateField()),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("delivered", "Delivered"),
                            ("failed", "Failed"),
                            ("complaints", "Complaints"),
                            ("opens", "Opens"),
                            ("clicks", "Clicks"),
                            ("unsubscribes", "Unsubscribes"),
                        ],
                        max_length=20,
                    ),
                ),
                (
                    "dimension",
                    models.CharField(
                        choices=[
                            ("domain", "Recipient domain"),
                            ("mailing", "Mailing id"),
                            ("failure_code", "Failure code"),
                            ("reason", "Failure reason"),
                            ("url", "Clicked URL"),
                        ],
                        max_length=20,
                    ),
                ),
                ("key", models.CharField(max_length=255)),
                ("count", models.PositiveBigIntegerField(default=0)),
                (
                    "server",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.server",
                    ),
                ),
            ],
            options={
                "ordering": ("-week_start", "kind", "dimension", "-count"),
                "constraints": [
                    models.UniqueConstraint(
                        fields=("server", "kind", "dimension", "week_start", "key"),
                        name="reportbreakdownweek_unique_key",
                    )
                ],
            },
        ),
        migrations.RunPython(rebuild_weeks, migrations.RunPython.noop),
    ]
