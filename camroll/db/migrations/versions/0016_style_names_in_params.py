"""ideas' params name their restyle's style by its human name ("Van Gogh-like"), not its id

Pages, the report and the export show params as they are: no "style-07" may reach them.
The names are frozen here as they were when this revision was written.

Revision ID: 0016
Revises: 0015
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

NAMES = {
    "style-00": "pastel watercolour",
    "style-01": "stained glass",
    "style-02": "ink wash",
    "style-03": "bold abstract",
    "style-04": "warm impressionist",
    "style-05": "autumn oils",
    "style-06": "blue polka dots",
    "style-07": "bold expressionist",
    "style-08": "pastel pen drawing",
    "style-09": "tapestry",
    "style-10": "sepia oils",
    "style-11": "golden engraving",
    "style-12": "misty watercolour",
    "style-13": "vivid gouache",
    "style-14": "icy watercolour",
    "style-15": "leaded mosaic",
    "style-16": "Monet-like",
    "style-17": "Mondrian-like",
    "style-18": "sepia woodcut",
    "style-19": "Van Gogh-like",
    "style-20": "red expressionist",
    "style-21": "cubist",
    "style-22": "ink with a red accent",
    "style-23": "smoky oils",
    "style-24": "blue-and-white porcelain",
    "style-25": "swirling mosaic",
    "from-image": "the style of your own picture",
    "sketch": "pencil sketch",
    "cartoon": "cartoon",
}


def _rewrite(mapping: dict[str, str]) -> None:
    ideas = sa.table("ideas", sa.column("id", sa.String), sa.column("params", sa.Text))
    conn = op.get_bind()
    rows = conn.execute(sa.select(ideas.c.id, ideas.c.params).where(ideas.c.params.like("%style%")))
    for idea_id, params in list(rows):
        data = json.loads(params or "{}")
        style = data.get("style")
        if isinstance(style, str) and style in mapping:
            data["style"] = mapping[style]
            conn.execute(
                ideas.update().where(ideas.c.id == idea_id).values(params=json.dumps(data))
            )


def upgrade() -> None:
    _rewrite(NAMES)


def downgrade() -> None:
    _rewrite({name: style for style, name in NAMES.items()})
