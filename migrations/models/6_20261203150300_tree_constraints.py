"""Conversations as trees, step 4 of 4: what makes the database refuse a corrupt tree, and
keeps the tool calls' bookkeeping exact whichever way messages go (the ORM included).

- A message's parent exists, and a message with replies cannot be deleted alone (no action:
  `delete_branch` deletes a subtree in one statement).
- A tool call goes with the message that made it; a deleted answer leaves the call unanswered.
- A root has depth 0 and heads its segment; only a segment's head says where it branched.

Each constraint is added NOT VALID (a moment's lock, its wait bounded), then validated, which
reads the table without blocking writers.
"""

from tortoise import BaseDBAsyncClient

from faceplate_models.migrate import run_briefly

RUN_IN_TRANSACTION = False

# (table, name): (the tables an append locks before it, locked first in the same order so
# that no append and this step wait on each other; the constraint).
CONSTRAINTS = {
    ("messages", "fk_messages_parent"): (
        "",
        'FOREIGN KEY ("parent_id") REFERENCES "faceplate"."messages" ("id") ON DELETE NO ACTION',
    ),
    ("tool_calls", "fk_tool_calls_message"): (
        "messages",
        'FOREIGN KEY ("message_id") REFERENCES "faceplate"."messages" ("id") ON DELETE CASCADE',
    ),
    ("tool_calls", "fk_tool_calls_result_message"): (
        "messages",
        'FOREIGN KEY ("result_message_id") REFERENCES "faceplate"."messages" ("id") '
        "ON DELETE SET NULL",
    ),
    ("messages", "ck_messages_tree"): (
        "",
        """CHECK (depth IS NULL OR (
        (parent_id IS NULL) = (depth = 0)
        AND (parent_id IS NOT NULL OR segment_id = id)
        AND (fork_segment_id IS NULL OR segment_id = id)))""",
    ),
}


async def upgrade(db: BaseDBAsyncClient) -> str:
    for (table, name), (before, definition) in CONSTRAINTS.items():
        first = f'LOCK TABLE "faceplate"."{before}" IN SHARE ROW EXCLUSIVE MODE;\n' if before else ""
        await run_briefly(
            db,
            f'{first}ALTER TABLE "faceplate"."{table}" DROP CONSTRAINT IF EXISTS "{name}", '
            f'ADD CONSTRAINT "{name}" {definition} NOT VALID',
        )
    for table, name in CONSTRAINTS:
        await run_briefly(db, f'ALTER TABLE "faceplate"."{table}" VALIDATE CONSTRAINT "{name}"')
    return "SELECT 1"


async def downgrade(db: BaseDBAsyncClient) -> str:
    return ";\n".join(
        f'ALTER TABLE "faceplate"."{table}" DROP CONSTRAINT IF EXISTS "{name}"'
        for table, name in CONSTRAINTS
    )


MODELS_STATE = (
    "eJztXW1z2rgW/isaf9lkhmZa2qQ7uTudgZRuczcJOwm93Rd2XGEL8I2RWUsuYXr73/dIfp"
    "XfYhMgwPWXNpZ19PJIOjrn0ZH5ps0ck9jspENcy5hq5+ibRvGMwB+pNy2k4fk8ThcJHI9s"
    "mRXHeUaMu9jgkDrGNiOQZBJmuNacWw6FVOrZtkh0DMho0Umc5FHrb4/o3JkQPiUuvPjzL0"
    "i2qEkeCAsf5/f62CK2qTTVMkXdMl3ny7lMu6T8g8woahvphmN7Mxpnni/51KFRbotykToh"
    "lLiYE1E8dz3RfNG6oJ9hj/yWxln8JiZkTDLGns0T3R3pcZqm6zf9gX7XG+i6VgMgw6ECXG"
    "gqk72fiCa8aL968/bNj6/P3vwIWWQzo5S33/2qY2B8QQnPzUD7Lt9jjv0cEuMY1K/EZaJJ"
    "GWQvptjNhzYhksIXGp7GN0SzDOAwIUY4nlXbgHiGH3Sb0AkXS6N9eloC6H86txcfO7dHkO"
    "tYVOnAMvBXx03wqu2/E6jHKItFVQPhIPsBovvq5csK6EKuQnTlOxVdqJETf2mrCP/7rn+T"
    "j3BCJIWyaRkc/Q/ZFsvoij1AuwRcAYYoecbY33YS06Przm9puC+u+l0JjsP4xJWlyAK6AL"
    "1Q0OP7hDYRCSNs3C+wa+qZN07bKcqbfTVrz9IpmOKJBFL0WPQv2LIuHCo0EQ4gymxpyvvS"
    "jc1I5GSV9jetTwkyppgjPnUJNpEzRhh5jLjn8D93CREpM8IYtJ21ECOEImw7dAICBM0xny"
    "LuIIszBNVYXwmyCR6faKkx3mA1j+/D37R4IDRRp+7vqd7cFOtBx3J9QJqQIw9zmCVMAhgU"
    "FW/bD7qCsC4Lkw2y+FKORLD2NFkSQC8f5BrPb8MqtTpzQgsrQ58/9m57aKiJXLqBbZsNNf"
    "QOvdS+17JHPn26fF/DIPE8yzwRMquomsftEu2nsUcN0X0kajo7Ef++fadtX/lIPfP67Dit"
    "U2Tfyy0UbnHof43dMxJYaf8MQNwVhZ4yTiptn+2S7bOd3T591aAL1aDXm9NZySfM7+0Arw"
    "nFaGPGQ7UpNGikLNnUWdB/IepQci5TKVmQOG9aP69/GcSjEiuiGl6PKvS497Mui+Zl3UFw"
    "HBvJdiLGLdtGC2xxwBSNHRd2NkAFikGgtsQYBFuXGKBqA7AenylhX8LeG+946lC8hzfcmp"
    "ECM1ORTFuagehJ+Mce2puaMEv61F4GC7gE18Hlde9u0Ln+VTFC33cGPfGmLVOXqdSjs5Qi"
    "iwpBny8HH5F4RH/0b3rpBRXlG/wh7AgNe9zRqbPQsZnYKcPUEDVl1FU7p86oq5LNqO/KqI"
    "cYJYY9aH1i1GMjs+oumBBZp3m3u57kI7tYxj9U0c1C+8FxiTWhv5ClBPgS2oGpkWfCBa7d"
    "p6CY/YQ0To01kYsXkYeRnFDQd+gx4b7J27m76Lzv+S5JvsOd8IIDrzALdzeQ/PDLLbEj9z"
    "gf6evY8DkQsJXVLuyQIiOrDkwDKOcCijkknDbJ3Vxf/Hrh0LE10XKIm/hlq4y1mRlz0WrI"
    "V5Gz6Ujm5AeGQIoS3y1mhAu7k0nDE6x+BJVDovuVuC00WoItKhqH/MESXAoXbIwoJ0vWbK"
    "D8HJbmz0iJStj+esrpScNWrJ2tkP9ngC4mK8L8DddfmesPNEMNqj+QaJj+mkx/EnhCBRA5"
    "SqQLex/BNB/8hFQK/RGIbQr2ULVsF/Zuv3+lwN69HKTA/nTd7cGUl2MAmSzfrssyDowYLu"
    "G6eMyxTIrnelpu+zM+ocRHnmXD5sdORH111biEgoXknN8v9mT+bSMrIwD9nixzHcdi3Z8R"
    "3GHCWoNWhqMxch4qEnHKfvC6XWE7eN0u3A3Eq1zkg/ak1JJFsbssBT6QSyumJfcXz27g3u"
    "ndvWifnr34+eL6XBDTBpRoWHOwBjl54C3E8eTJy6IbzPRoWQDm3cubzu3v0bqISJqr/s3P"
    "3ZyV0f190Os0xOmBU2gNcfr/OOoNcdoQpzsA6SaJ042yXQGJmsd1xfxqCdOVoHKrhSZRKM"
    "QPFkrGwPzAZMzQeRBDJB6lCYEpwoxZYvJwSHTJ3AZbz0XxKS3kydBdG6pnSMWjfC0OgU/Q"
    "5WzmSSjOETH9U2KQcUkwh8UzaCkGlTFrZMPjyZAOacc/0LfEATOsEhNqBr+HEuyCMzGZEZ"
    "hZon1hEICIB7SoBx6HCJaaY5fIJgZZ0ZF0QmDohvRLkAbz7EsriBF44OiLSeZ8+uUYedSG"
    "MoOQAlEMwrbQ+ks0xcwHStQkgWohi6LF1DKmQ2pgRqByNIW8sjNB1YCuaJKzoOgoWbfomn"
    "hhmQJYE30ZO+69rmTgbEjTXTk+QXcOFB+iI8PKZMPGZIHk+kYupgAJMzBl4gz+KC60hWQ3"
    "j1tDOnUWBEYcwaxfohGIGFPid1vGpUFnV4kzS06jYCWrpmC1yK9wxehTSwx/jSCznAZwz5"
    "V/1qlXyBRWGgWbBSUPNXR5h0BRoptPV1eZJsXw+yoUBuCxtnhKY8ICfNHKUPhTp1bEXVSl"
    "L/sk2GvW6DqOTxCUQx51KgA9D/DUSopRr98qUVSFVqVqTE+IhtR/XlL/2WzbLcbEpTZw2G"
    "98U3Fb8W6uUxTl2aPeLGPfKmCHsrt8iKKxJeNk1pImUSs2hEIDaBVG7dVZlQOWtFOYOF85"
    "q3yVYgBKq+5Vil3iL9ehQQa93wbl7LHCkoXZ05SyinhZCEIx0a9KPYnm3x/8N8LeSyR9X6"
    "P+CCTkmjFYfQwi66pimHOUf6UI5y1tqqENiPDI+SpdO7CBfO/yuQKZVZu2qimjSu2HNTO2"
    "XDXEXwAfdGSbVk2OK1EV9hzR3cc+4i3AhFTG4Dw4x/VJDVgMEWUwdp3ZNoek7GJFsbovvV"
    "mxi8o+ecei6HZFqI3OZT5kmejFu7XdddnITtGcKBZvFvt5tlTlRDFk4Gpoz4TI7mtNectp"
    "DhrGlMShvxplJGhAXltb3bRyyLiqsOeINkd7KXgVXrUqsIrQzs/o5z0sNVI3/594aJr+kM"
    "B+TtpHD09zlm7+IWp2Lq8B5OoXTXZzBj8Kr7KAFWBv+qhzMbgEa6nSxR5xbGpt717PnsCt"
    "bmDC6tVn2MxhlPf7Wo9vKkTccejgSltB9Fd6WUbQ5LWiiSlbEDc3AHwziG7R9pKuUoil31"
    "HhLtW0urZ7hWqA2b2WE1Ei01tl4SQcclS9MiV8RDKLvzsjYjkc05GubssPXUCpKSkbLCIB"
    "XMebTCW2LOey1DpLXv1jNqsEF0j8/I/YBOIS3rrfsDGc2VxsAetoBwDESUkrmgPk5z1A3v"
    "I3bHbNBFVPLU8r3Qs7LbkXdpq9F5ZsWQbn4sPLlFhzgFn/AFPRYzWuhilyW7wcFqXs7e2w"
    "hgQt1jSHS4I21yoObdSbaxXPzRQ21yr2+FpFxCXkecEJnqHEE1aiqKp8QSQ6VJWOK81SMX"
    "4wfoZUkASNfyAeEing/+Z9Q2QDNawhBh/aUzEEPsZUT/Pw1VzkoEP1avZSVYeFhFRYtar9"
    "k3E90YJ6HfblC+uLwr0z9TxyAyA9IvVaVe3Dt0VtagLQd4A/aALQt3DqHWiaDMbFLE1CZJ"
    "d5Ggmv3P7Ex6n8SJ9qyKZ/GqFKvDnkKvlphGzEeePMHphbU8WZbUJMNqrLVBuqKrKq1O6D"
    "upnD0KfeY8rYkDVGIFd4P7bv9ZyhNoFAz+/urxQIlIga3lok0F6rmUeHQVUCj4+Aqju2Oh"
    "B7p2YeBT9XEStjAI1MOMfbZ78k55jDfIVcZDHrJTzDyoTXHPI64iMVDmIwe5j4YkUUgAHj"
    "YZmEcosv0dx1vsJD7ndxVyukHm2Vw4loV/3PvdujoUZm2LKH2rGWoYwkFrp8r9vOwoeuCa"
    "LYSRJEjlId9zwS2GXnfMUgitftKkEUkKvkc4qZIArmjf5LjPzQ9JLPWCpS68H6eX9zc/M/"
    "CNmwHsXoHy7r0RzhH9qoFx3hZ5zSKpH9md+hXD3O+kBdVdXlVH8A4gmXIZI/OHGISEUR30"
    "8I3A/Cyg8FnvW7Zt//AdQMoz0="
)

