"""Each MCP config's box of secrets gets a version, sealed into it, that goes up with every
box the row is given: a row's earlier box written back over a later one is refused by the
database, or does not open (expand only).

A column added with a constant default (a catalogue change, no rewrite) and two triggers on
one table, under a moment's lock. A writer that sets the version must raise it whenever it
changes the box (a concurrent save that lost the race is refused as a serialization
failure, which the store retries). The previous release changes boxes without a version:
its boxes are marked 0, sealed before versions, as it sealed them, until the next release
contracts this and refuses them too.
"""

from tortoise import BaseDBAsyncClient

from faceplate_models.migrate import briefly

RUN_IN_TRANSACTION = True

UPGRADE = """
ALTER TABLE "faceplate"."mcp_configs" ADD "secret_version" BIGINT NOT NULL DEFAULT 0;
COMMENT ON COLUMN "faceplate"."mcp_configs"."secret_version" IS 'the box''s version, sealed into it; 0: sealed before versions';
CREATE OR REPLACE FUNCTION "faceplate"."mcp_secret_version_goes_up"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.secret_box IS DISTINCT FROM OLD.secret_box
       AND NEW.secret_version <= OLD.secret_version THEN
        RAISE EXCEPTION 'the secrets of MCP config % were given a box of version %, not after version %',
            OLD.id, NEW.secret_version, OLD.secret_version
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER "mcp_secret_version_goes_up" BEFORE UPDATE OF "secret_version"
    ON "faceplate"."mcp_configs" FOR EACH ROW
    EXECUTE FUNCTION "faceplate"."mcp_secret_version_goes_up"();
CREATE OR REPLACE FUNCTION "faceplate"."mcp_secret_of_previous_release"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.secret_box IS DISTINCT FROM OLD.secret_box
       AND NEW.secret_version = OLD.secret_version THEN
        NEW.secret_version := 0;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER "mcp_secret_of_previous_release" BEFORE UPDATE OF "secret_box"
    ON "faceplate"."mcp_configs" FOR EACH ROW
    EXECUTE FUNCTION "faceplate"."mcp_secret_of_previous_release"();
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS "mcp_secret_of_previous_release" ON "faceplate"."mcp_configs";
DROP TRIGGER IF EXISTS "mcp_secret_version_goes_up" ON "faceplate"."mcp_configs";
DROP FUNCTION IF EXISTS "faceplate"."mcp_secret_of_previous_release"();
DROP FUNCTION IF EXISTS "faceplate"."mcp_secret_version_goes_up"();
ALTER TABLE "faceplate"."mcp_configs" DROP COLUMN "secret_version";
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return briefly(UPGRADE)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return briefly(DOWNGRADE)


MODELS_STATE = (
    "eJztXXtz2zYS/yoY/nP2jOJJ7djJuTedsR238TW2M4l86cMdhiJhiWcKUEkwsqaX7367AN"
    "8vk5JNUSpnOo1FYgnwt8Bid7G7/Eubcos63t4JdW1zoh2TvzRmTCn8kbkzIJoxm8XX8YIw"
    "Ro5sasRtRp5wDVPA1TvD8ShcsqhnuvZM2JzBVeY7Dl7kJjS02Ti+5DP7T5/qgo+pmFAXbv"
    "z+B1y2mUUfqBf+nN3rdzZ1rNRQbQv7ltd1sZjJaxdM/CgbYm8j3eSOP2Vx49lCTDiLWttM"
    "4NUxZdQ1BMXHC9fH4ePogvcM30iNNG6ihpigseid4Tsi8bojPb6m6frV9VD/dD7Uda0BQC"
    "ZnCC4M1ZNvP8YhvNj/7tXrV28Ojl69gSZymNGV199U1zEwilDCczXUvsn7hjBUC4lxDOpX"
    "6no4pByyZxPDLYY2QZLBFwaexTdEswrg8EKMcDyr2oB4ajzoDmVjgUtj//CwAtD/nHw8e3"
    "fycQda7WKXHJaBWh1Xwa19dQ9Rj1HGRdUA4aD5FqL73cuXNdCFVqXoyntpdKFHQdXSTiP8"
    "70/XV8UIJ0gyKFu2Kcj/iGN7OVmxAWhXgItg4JOnnvenk8R05/LklyzcZ++vTyU43BNjVz"
    "5FPuAUoEcBfXefkCZ4YWSY93PDtfTcHb7Py9rmb033p9krBjPGEkh8Y3y/YMs69S3YQ4o2"
    "s+BO5WY2km28WruZdkJ8j7r/8Ig3o8wC/GF6TG1BZtQllrEg3JV/TmFSTQbEZmRqmy5/AZ"
    "NCeHtahnGrP+3xPfQvLQZRw970YD+ELZxbGramDzPgKwryCOoQRt+2HvQAIF1SB3QIYLBM"
    "NPkIwE3++NZo0765uXjbYNf2YTx7SLPMenx889b+deczE1lNsKejPfz/6x+09leoXIwHR7"
    "vZhSffvXobjxlUd4+JKbq8zWjBgpCLgezcDM92s+upzrbzpsam86Z0y3mT3XDkes2DfWqP"
    "S/VRudb1iPBxxXSNmCfkjZRE8VSpra/+c3//4OD1/suDozeHr16/PnzzMlJc87eqNNjTi5"
    "9QiU1xJtRqExqASxE23Sjgylu4I+wpLVEEUpRZXSAg3Qv/6A6T6utf8ILWNXMWgeyrwHp4"
    "cXn+aXhy+SGlJrw9GZ7jnX15dZG5unOUWTbRQ8jni+E7gj/Jb9dX51mhFrUb/qbhmAxfcJ"
    "3xuW5YCTEdXg1RS3Hdn1lLcj1N2XO9K1wPMUqwPRh9guuxOlNXrUhqQE+oW3RX139Ek8hp"
    "8Gl089D+yF1qj9nPdCEBvoBxGMykBYAGKvhN8JjNhDS+Gksi15hH6m1yQsG7wxtTodStk0"
    "9nJ2/PlT7cvkl0xhk6Z4zgtXOGUer+oMo8MhMtaxpJ14wSc2IIIiYofAi/I4a0dI7hX+FS"
    "ilemYHLA2L0B8ShlxHA4mD9gxJCZAfqd4AR1DujG/kqJQ427vPX0fN0sb1altxP7UQML7a"
    "sUwsrKkgOyxaLCzkJBWDyGZXrloJSWdkY+vzv/eE5uNWylm4bjeLca+YG87K29dVt7whYO"
    "bWLsRQRL2XoBiF0R0hl/bS2P4n6FR3E/71FUokFH0dBQ1chTrjC/2wFeQ8HoGJ4IxSZK0E"
    "hYehM+Z98Txhk9llcZndO4bT2rcJVlEHMlFkQNDoLSRO3Z3S+bMoFzh8hxEk/YjkPmhi3Q"
    "OXjHXdjZABV4DAGxhTwIti5kUCOzfMVjpJgVHhU4uAJGlPvckzQrOd1bWhZSLRqQmcu/2h"
    "Z1QZdYeIJOdbgwnYkBmZozHfZf3E9XXgVP5pxPMmlKhYF7SBMmJWk2gUlyNcxmjm1KneYf"
    "HgFx1VV2SIkJYPtFh1WlEixHt5QQa2vRBJo3CDGwGa0BuaczQUYLKbbktXAvYVwQ+UrUIg"
    "t1XNO+HOsdh+VQb6YLqXcc/h253jsOe8dhByB9TsdhTpEoUL5PA8off/5IncjNV4z0ZWzA"
    "bQnYqdWO9lSZsdgEpiE85wwes004PacP+h3P+AST1wdVPucJx+cP6viaL0GDXBAwKInhgW"
    "2mbGQG/3lz6pIRRbsZzDTLN1EFBR3TdogtiB2qpRhSMAYLmhF86byT+Rmev7x3mT7MbBDD"
    "qHPU8PBKFPVQGvfhOp104BrTYhuwKoIkptmU4JGBNPpQBstwN+qBTgwDbGTptRxIklhrDS"
    "2DNOXmWAaaQUzX8CYgtObcvZecQhlCHGPmgR0PLFzdn9JxUyFvIfZ+gfKFuZkWYi2/QG8h"
    "9hZiy8r4YDNCSy7PPpxxdmePtQLdPr5ZqeDjgYkp2zWNuwcqRpXSF54iSZ0c1HQCnRN1DD"
    "NAP7NBcHBEsR1DPQQGi+BzKiLxn+75BWr+79HMl7D9sUq+W6+LP7kuLv/NAV0eSxG273LY"
    "fMeyswLJ0CA5K6Doc7NWOG+kDIEoECKnnDvUYCV2TEyVQX8EZM8Feyha2oX99Pr6fQr204"
    "uMhXh1c3l6DlNe8gAa2aLEcPQoKP5Cx58NgyLSdO3P+IQQH/m2A5uft4f9NRXjEgovjB1S"
    "79XRwIgA9Hu6KNT2y2V/jrDD8XQajDLkxog/1PS6pPaDg/0a28HBfulugLcKkQ/Gk3V+Mc"
    "NdVAIf0GUF00KoxdMN3E/OP73YPzx68dPZJUY5gDEzIKY9A21Q0AcxIMIYr7wsToOZHi0L"
    "wPz04urk46/Ruogs6/fXVz+dFqyM01+H5yfF/CmtClCZ4paj7XC0nVoUoPoHw8VIcQP2PQ"
    "KDxPDw78nL4/DSiIItQMOWNWVanwjXMfVrm/1WfTzLlnG9j2fpvZUdgHRjvZVBbEuRrzIO"
    "e6nwVCYibOplvjF4iMpFS6ZYgX6BKWnHQYoa/pQqIMYSeJ6Nk0fARZfOHFnmIE4CgDY5d+"
    "Uz9XPL8Ke8jTkGe+RiOvUlFMeEWioJAWhcGsxh/A1SyoPOPHvkwM+9W3bLTlS+SBwDYXhg"
    "tzJquKBHjacUZhaOL8wxwQo8NvPBYpRlBgyXyiEGTcmONCKBdbfsS3AN5tmXQZCC8iDIF4"
    "vOxOTLLvGZA88MMlbwMcRwUOovyMTwFFDYkwRK1lOZT2xzcstMw6MYtTGBtvJlgq4BXRwS"
    "nzOyk+wbXw1v2BYCa5EvoBXe66kGwrtl2VfZ3SOfODw+REdmLcqB3dE5keubuAYDSDzTYB"
    "6meOzEDx0Q+Zq7g1s24XP6FQvDGGxBRkBiTtT5rEp7hJfdI0P4FYVgy2kysZEdC+h+LHMd"
    "v1Lpsb5lI87v7ymdSfb6Iv2ug/zbwaU4l+bL7jGCLWzDgVdQQhDnErz/kLuC2x4FBL7scd"
    "h5d3a/wJjv1VinywTDJKd6IG3S6mq95McQGD3ARC75WnmWBQMQviv/bNIv0pR2GuVbBk++"
    "1cjFJwLCnFzdvH+fG1LMGSXmYZLUqusTDSZ8gCKtDYWa3o2STqMuFe1KsDfs0eVcOaGqIY"
    "9eKgC9CPDMeohRbz4qfFSNUWV6zE6I/uBovQdHa9O/W0ytyigZsCcqdbatlE+XlyU6nzN/"
    "mtPBU2CHtF0+qNNUTuFAqm2DWFkLlbRlvLbfHdU5xMsarokzvKPaBRaHILRKz/BKCix2yU"
    "f+FBJkeP7LsPqEIuWJDZtnjy3SiFdFr5cfJqWpNiB9s7NnpxJJZQ8150CCrufB8jyItKua"
    "ebJR+43IjzVG/Ks0P0EHUhbw+nL5kzptXVUmTbUZ2syd7aarXCDwwYu0qdUUmBJ1YS8g7T"
    "72kW8FVMgUD46DWAHleIHFELk17lw+bZMlVbVFysV9ZXGRLgr7ZJmRsgIjoTQ6lu2IbZEX"
    "PzxZuZfnqayAHtxiM6GYbxHBNuimLdRDCmugNME4SbN9MB+9qoHy0atSkPFWZlOwme1NQH"
    "k0vGbfY8gR9mg/jrYfSrO6oj4i2Awpf0+ZJ08pHBgMMxcDwrg7NWCYtGYl57aFuMm9hhmR"
    "IUWn9f1kOqSsWknJzLVNigdRsPOanU6HFBOb3eOwGiyUJM1GrBU8MkN9AE9Ng7GTkcPN+4"
    "5Gr/ZlvTrFjj7krlxobWbwVZ2Qu/D4N8fyctM9QdJ9kz1YgPjRChy3MgVlqlsQ3WG36jEp"
    "OAmuC3sBaR/7lrXvkof6dYFNEXV+Rq83mtDMVF5fMaowW8h9Myfto9GFBUu3OMowP5efAO"
    "T6BbK6OYMfhTe1gFPAXl2Tk7PhBWhLtQqSYVyh3V49sg2BO72BoctVnxpWgdNhs8uRKVUh"
    "ClwIT1ekroDvGxUBaqQv1EFTleMqzHB9HkRb1L2knz7EUr0o2qUNta52S79d4j8f0LmhFQ"
    "Vex3cHlbHXeEmXPpKa8defcaoZyogn6BRSx0fykoroZcfJjyjiyR9WdjB910XfmPrcou04"
    "GI+mXGf5WhHP1UnDUNikVz06xYCV54o6BeJUBGgCYF2RSgYUh2T2UYbrjTJcy9FL1xTG5z"
    "4NaPkAsdvwPssJYiyicihXO8lShJvjI9NC977aJbCKXlAnNEpgmYV74d+rtJ7NZn7Dg56I"
    "pNOVL5MbPOw7hjmR6eQw9GC/7/JJjxquvgRzspQbw6Mka1RWllyq8n06zyp97tqiyJZ8jF"
    "Mx4WYyCocvKKrQ3ecU90Xj5RTTbAx/1JADBg2ICkSR1iozHd+qG3DQV8zomlq4Xcd3Off8"
    "enLTh4Z3rxX4R+T1QZVnRECLupUzMYyTTuOvo2JwA7e4POYfqAxoknHcyQFjDITL/fFEeq"
    "AK/CBP+uTli+Ivk/8r8VOfWg3IK/we5V9aNfl0ho7ypxgHAKQ249770knvS8tfWu3cDpBy"
    "DBzWcgwcVjgGDvOOgeTIcjiX5xdmyLYh5LXtHMOUHMsoqFUVQlN0LdYIja5sbJHQXtf8u+"
    "iafXW2beZ6gZ+zr87WV2dbe8TJYDOqs0URF0VWcCIao8ISThU6qPMhiSjvURquLB+womp6"
    "5UIvZBiLylkNw03A/i36lMQz9PAEZbJgPDWrVMWY6tloxXomcvid6kY9+5muo49dB3OgXt"
    "cqeVVPjKDZCyv60v6iiky5fh4p0pXlSLNRYXbx8mPqa0R1wH/Q14hqITcgkDQ5jMu9NAmS"
    "LvtpUrlpQTJ+zbOUdETHYZ2SUNCqPKLjMF8Uqjdmt8ysqWPM9ok4zyrL0jpUXWTTVN0H9X"
    "lCxleEPq9DNuBAIfFmbN9PE2nep0ut39xfKl0qUdintXypjRYzj7IhLQQe50BadrTKiI0T"
    "M4+CXyiIUzyAQSaM4/a9Xzc4sLfGQivwfkX3BlXeL1mKRreMRdPPqCrYvdAPZbsykWVAPH"
    "86pZbMULkZnhF4smwiuz4mc5n1DU0M16YefgMVG/Ccjfdc/dwy2UC5z0a+NaZCRZlZZEcV"
    "0Xf5HOvpQ/MBSVXJT0pEb3fFkBNL8SWfgVPHxRXzDL8eV+HZ6j026/XYBHM3j3VV0GaCqL"
    "PfPKtvva4lDlMG+epxoHzD7IAEZc+B1VMAlmJEyQN6fqwc5788O3L0PTdWieVfihE50p4H"
    "y/EgyixYig1F1D0nlpRN7RZrbAPxZKnGmocsa4HeZzJxtChqswL+JFV3WRAajnNbTAjjG1"
    "QpMzAO88dgJeHLgS1ZcfbVIT8aGOsrO4Px8KoLVaW75tztSxtsemmDPtKzj/Rc99FPRyM9"
    "pT/7I3ccf6aVubuD24PHPd6ubPkMTm/pOE76inNuaSNwTC9Wcno36OeWjdLua+nwXjVrMl"
    "A7iiIxVvBqB3zpHdtrl6OD3rHdOcugd2yvmwO9Y7uD/Ogd2x3hRu/YXj8Pesd2VzjRO7Z7"
    "x3bv2P4bB/znUpoGhH6ljHAGDFOOldU/oNYgLL0/WHgEy/5goT9YWDu8/cFCf7CwiZBu7s"
    "GC9HsXnCgoblQdJQT+zDpHCDNoyxmZTzjxYFZ4qLFFVQxBT4ANgwlbLEi4exQVhljuIc2c"
    "/AXOeu399efzjzu3Gp0atnOr7WoF7nsYmi7v6w6fK+h6930n3feSS02224hgC7fbg/062y"
    "20Kt1u5b3MJwr80X+pWfwVvHKY01RPg/XjU7o9xebwsFbpgMOK0gGHfemA+uhvb+mAvg7e"
    "tnE9xChbBy+ndZcrifH0CDL7Crx/DT7mdiofsoEzoEwfL/XFrQjUlqbEp+CacJxkK8H0ji"
    "txtI3wTM0Ztrizx6t+ufPsw5l8zrYiFRXeXx6jsLr/NsKTzkdfHqNk9vv24pSIYlwRqjhy"
    "clvQenqX0bf/A0vRPvA="
)
