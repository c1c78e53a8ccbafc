"""Find and organise, step 2 of 2: the sidebar's, the purge's and the search's indexes, each
built concurrently (writers go on), each in a statement of its own; an invalid one a crash
left is built again. Then the folder's foreign key is validated: a scan under a lock that
lets reads and writes go on.

The messages' search index is the long one: it reads every message of the user and the
assistant once (about a minute per million messages here).
"""

from tortoise import BaseDBAsyncClient

from faceplate_models.migrate import briefly, build_index, run_briefly

RUN_IN_TRANSACTION = False

INDEXES = {
    "idx_conversations_archived": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_conversations_archived" ON "faceplate"."conversations" ("user_id", "updated_at", "id") WHERE "trashed_at" IS NULL AND "archived_at" IS NOT NULL',
    "idx_conversations_search": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_conversations_search" ON "faceplate"."conversations" USING GIN (faceplate.search_document(user_id, id, created_at, title)) WITH (fastupdate = off) WHERE "trashed_at" IS NULL',
    "idx_conversations_folder": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_conversations_folder" ON "faceplate"."conversations" ("folder_id", "user_id", "updated_at", "id")',
    "idx_conversations_listed": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_conversations_listed" ON "faceplate"."conversations" ("user_id", "updated_at", "id") WHERE "trashed_at" IS NULL AND "archived_at" IS NULL',
    "idx_conversations_trashed": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_conversations_trashed" ON "faceplate"."conversations" ("trashed_at") WHERE "trashed_at" IS NOT NULL',
    "idx_conversations_pinned": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_conversations_pinned" ON "faceplate"."conversations" ("user_id", "updated_at", "id") WHERE "trashed_at" IS NULL AND "pinned_at" IS NOT NULL',
    "idx_conversations_trash": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_conversations_trash" ON "faceplate"."conversations" ("user_id", "trashed_at", "id") WHERE "trashed_at" IS NOT NULL',
    "idx_conversations_temporary": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_conversations_temporary" ON "faceplate"."conversations" ("created_at") WHERE "temporary"',
    "idx_messages_search": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_messages_search" ON "faceplate"."messages" USING GIN (faceplate.search_document(user_id, conversation_id, created_at, content)) WITH (fastupdate = off) WHERE "role" IN (\'user\', \'assistant\')',
}

VALIDATE = (
    'ALTER TABLE "faceplate"."conversations" VALIDATE CONSTRAINT "fk_conversa_folders_44569b0b"'
)


async def upgrade(db: BaseDBAsyncClient) -> str:
    for name, create in INDEXES.items():
        await build_index(db, name, create)
    await run_briefly(db, VALIDATE)
    return "SELECT 1"


async def downgrade(db: BaseDBAsyncClient) -> str:
    # Aerich runs a downgrade in a transaction, where only a plain DROP INDEX can run.
    return briefly(";\n".join(f'DROP INDEX IF EXISTS "faceplate"."{name}"' for name in INDEXES))


MODELS_STATE = (
    "eJztXVtz27iS/isovYxdpbgSJ3aynt2psh1n4j2xPRUrO+fiUwxEQRbXFMjhxYpqdv77og"
    "HebwJFiSJlPMzEItkA+DUB9A3dfw7m1oSY7tE5cQx9NjhDfw4onhP2R+bOEA2wbcfX4YKH"
    "xyZ/FMfPjF3PwbrHrk6x6RJ2aUJc3TFsz7Aou0p904SLls4eNOhjfMmnxh8+0TzrkXgz4r"
    "Ab//o3u2zQCflB3PCn/aRNDWJOUkM1JtA3v655S5tfu6beJ/4g9DbWdMv05zR+2F56M4tG"
    "TxvUg6uPhBIHewSa9xwfhg+jC94zfCMx0vgRMcQEzYRMsW96idcda/G1gabd3o20+6uRpg"
    "1qAKRbFMBlQ3X52z/CEF4dv3n3/t2Ht6fvPrBH+DCjK+//El3HwAhCDs/taPAXv489LJ7g"
    "GMegPhPHhSHlkL2cYacY2gRJBl828Cy+IZpVAIcXYoTjr6oNiOf4h2YS+ujB1Dg+OakA9H"
    "/Ov15+Pv96wJ46hC4tNg3E7LgNbh2Le4B6jDJMqhoIB4/vIbpvXr+WQJc9VYouv5dGl/Xo"
    "ETG10wj/9/3dbTHCCZIMyhND99D/IdNwc2tFD9CuABfAgJbnrvuHmcT04Ob871m4L7/cXX"
    "BwLNd7dHgrvIELBj0s0NOnxGoCF8ZYf1pgZ6Ll7ljHVtmz+Vvz43n2Cqb4kQMJbwzvF2xZ"
    "F/6E7SFFm1lwp3IzG/NnXKndbHCOfJc4P7nItQmdMPzZ5zE3PGQTB03wElkO/3POPqrZEB"
    "kUzQ3dsV6xj8JzjwYZxjVvbfUe+ucgBnEAvWnBfsi2cGsygKfJD5vxFRbyCOoQRt+Y/NAC"
    "gDROHdABgME0GfAmGG78x1+1Nu1v364/1ti1fTaeI6BZZz6u3rwH/zn1qQ6sRtDT6RH8//"
    "0vg/ZnKJ+Mb08PsxOPv3v1Nh4zSHaPiSm6vM0MggnBJwM6+Da6PMzOJ5lt54PEpvOhdMv5"
    "kN1w+HzNg31hPJbKo3yuaxHhasF0h5gn1hu+EsWfirS8+h/Hx2/fvj9+/fb0w8m79+9PPr"
    "yOBNf8rSoJ9uL6VxBiU5wJpdqEBOAQgE3DBVz5yO54xpyUCAIpyqwsEJAehX90h0ny8hd7"
    "wckdNZfB2leB9ej65up+dH7zW0pM+Hg+uoI7x/zqMnP14DQzbaJG0O/Xo88IfqJ/3t1eZR"
    "e16LnRPwcwJux7lkathYYniWU6vBqiluK6b0/W5HqaUnG9K1wPMUqwPRh9guuxOCMrViQl"
    "oA3KFt2V9VdIEjkJPo1uHtpPlkOMR/o3suQAX7NxYKqTAkADEfxb0Ew/IY2vxiuRgxeReJ"
    "v8oNi7szcmnhC3zu8vzz9eCXm4fZXo0qJgnMHBa+cUo9T9YZV6pCeelFSS7ihB+gx7yJvB"
    "4oOsKcJc0zlj/3oOIXBlzlQONnZ3iFxCKMKmxdQfpsQgGzP5zrMQyBysG+OZIJPgaV572l"
    "4366tV6e3EWKlggX6VQlhoWXxAhres0LNgISwewzq9WkwoLe0M/f756usVehjAU5qOTdN9"
    "GKBf0OuqUTRHAgwvpFzVjEbFfrsz3hMb1fU9uv325Qs6v/3IbmFHnzHOpu9td9Rhlxse99"
    "2ohbHbBqUNRy6aqDXuuLV1x81bWGPYZYObWuYkhnWTCIuW5ad1Apv1UFmLnWW4JFSk+qMh"
    "c5tJiU75mhaPJ3z0IQdIQbeDKdaJbbKBHbkEJo7Gdgl/Tqh3ELBuiOC/ePBD5BmeSQ4H1S"
    "MWrSWHyxTQzIhBxD2YYtcTnwb6L7bnTA8rJ4oyke3aRMa5X8dCFhGsZSALQOyKZJtxckm5"
    "YY4r3DDHeTeMkKc0kKdq6md5ygbfdzvAD0CaNNkSEMqaIHZGEqY7sxb0Z0QtSs74VUoWJH"
    "5WzpTWZBrEXImltzxHSq2VaaL2jJWv6zLBskzEx4lczzBNtMCGBx6VqeUwdYChwppBbNkC"
    "HgTyPjColi2zoe89ZoVLPBhcASPKHZVJmkaeypamBdclh8h2rGeDyTxMAVsyeX6usQtzm+"
    "3Bc91mW6wDG27jWbAxj2aSSXPiYdhD6jApSdMHJvHZYNumoXOh5ycXseWqq+zgKyYD2y/y"
    "8JeuYDm6tRaxtiZNYK5gi5jlECa1PhHbQ+MlX7b4tXAvoZaH+CuRCVoKH3f761hCT61reM"
    "+QbsDy3jE5q7+G9rx/JdLq63I5Rah43GUee/iRidy1RJIESR82OzD1siG76CCp6Gv80sxi"
    "aiKssnMuMcLAGeMlQwza3gpTtpRM5AGTgwmmJfxK0mU4NmaE2xLmoyt1wj24K2XCRHad8N"
    "0vGnwQhYBm2GUivOsSyYCEqtiCu7svKS5dXGciDW6/3VxcfT14w1nGHjK8kgCEtDWzzlqZ"
    "puzNYsmaE/yB4SPXYPz6GeW5x+9unnO9W2ZVgEq5dNrPUAUVoPISuS4ToJLyI8maQFNEnb"
    "d+tmLKVyE/KuSnRyE/+SVgA6B+ihrq5bxfiWpq2UvhykaQcJwWx1KljgClVbsCHSlo4tPf"
    "vhIzCoEqhj0ZKDXCj3v0WRcZVxuCdRM7tfYRJHeGnaYQ3UMb+woQOOHKPIx1QBqxdi5ZM/"
    "uEU1vRnrBIrQj4DNYxuZjPaA2VORzHngUfK0bJFoZoYUCs5YykLv/kIgjacT0URjsmLW/c"
    "54Efi87MbaeTmjGfKYiCODZuDZU6UlcIsGREmOhlmNUMswOSCNBiTT0C/epgUxWxtNuIpX"
    "1XewYF89ZaUCHvtqZbvjgbTQHsgceZ/OFjE5ZHiKQ32DLhwJKbOwugTLfKdNtnI56M6bZg"
    "p5ddgwtIu78Wt2zRi+UZWVRjCgVmtT1Pz5zyamiCyh4a6yfEKy1RBbN2tZ3PEzpVQ4T3y8"
    "KUBTaeuF06KvmJkAm0NCjQmqN7wyp1eZp8Sj6FDOMw6KD82GIYOn5gUSJyvogLh0Our/Jw"
    "cmLZJkGLmYUc8myQBcLUXbAPtSKvzEa7qKkhh3GXkipxCKKWiIyXPPq4xqmsqDeH6EH2J7"
    "nOBKJ59btut1Ez9Y531ukj9OYonb6TOv1Lkyu5shlMbrY0ZWWTtuTNeOal0b6fY9MsDSKP"
    "qbocPf4G+fYQvXqDJtaCDqNAcRSPXjpE/O3x+9MoOhx+VAWG39+cf/mSD4VjOqEbGApkI0"
    "oTJO1n40ssK2PfMBlm7hH0V3dhGbgzy/EQGwuTFJA+s1xCwxj+cFHuXlCpbs3nhbkTR2zT"
    "KFuHIpJ9OBlZZbS4+vuoGvHIZvHl7vbX8PEsG1SuKmVPenlm5n3nukwoYEIbqiHopam6L+"
    "OpaMC+wamiAduMBkzYNhqiun+hVllg02tfpyyGIhSzyF4YBWlWWAv5M9IhNdDDBNkm1glk"
    "gMZRymhjQsYY7HbYC06vpdyzQwR2PtEZIlifFZkJN9t4gYHwX9EqwpH6d8ZgqGxQu7VB8X"
    "9zQJcnwgmf73KiaHlps4V6BErD2zNZX2l4L5HrMhqeUkaUMrJrmblBNuJix9QGT8/01h7c"
    "biz/ZysjCievVyoWXE6XUytumPi+RC7xEAZRXyRJo4G3H40JBA3YjjXxdchB5FPPMJHhIS"
    "PMSwSFOB6NZ3BrsJfOaxZbaH/9nMzkh22wdUYyaylHUfnOd78ZVOkteF6cBKyq7kpM05eS"
    "K0NxnAWbJlfKicuEPjZAOffhbsqvJOZaTdE3Tdkf0XeAkS4St6CF5TxxTsEagkxsu4SnFG"
    "oe39BxWViFyu+/CiSl+CoVSKlA/VWBtinW31z+xpShqVF4ODe+WSngQ8ZcnT9Xt1olo6JE"
    "CH1hGmEuk4MVn3WORB7eoTjwBYNDgu1QIIX7AKCdijjjzbWvfAh9k8WVD2HrNY2DlUE2iD"
    "KmUBWNGwREEgpAFCwilTk2E1QtZtgMl5Z2Yd9g2kyXMMHf0+Bnzaz4aboeRw3zdwiLR4j3"
    "6mhm/AD0J7IslPbL1/4cYYfDhgdslCE3xtYPSatLaj94eyyxHbw9Lt0N4FYh8sF4ssYvip"
    "1lJfABXXZhWnpi8nQD9/Or+1fHJ6evfr28gdMLTJkZIt2wmTTokR9QvAlLHmWoWrmCLz2a"
    "Fgzzi+vb86//KA7oviiYGRf/GF2dF/MHnB6FZ24rC0PnaDtcbkVMCib6B8OF+oqY7XuIDR"
    "KKKv6MXp+Fl8aE6QIkfFJyTVPlozsmfu2z3UoFbOwZ11XAhrJWdgDS3lorg+jyIltlHHhe"
    "YalMpBOVqxdNWSMiT0EmDRgUcj6LI5OFCAixBK5rwMfjQZoDYptLiBmIq8CxZ3Lmyi3180"
    "DhJ78NReaO0PV87nMozhCZiCp0jMYhwTcMv9kq5bLOXGNssp9HD/SBnouCgXEMBHaZ3koJ"
    "dpgc9QjnLN2zRBoHNnzWks80RihrYmOH8CEGj6IDrkQy1j3Q78E19p19HwY1CH946PuE2N"
    "7s+yHyqcnaDEoWQjMIm7DqL3mdBhz2FKRZNChazAx99kB17BKI2pixZ/nLBF0zdGFI1oKi"
    "g2Tf8GpwA4qxYjpB35lU+KSlHvDcB5p9lcMjdG+x5kN0eK1vPrApWSA+v5GDKYPE1TF1IU"
    "/ZQdzoEPHXPBw+0Jm1IM+Q9wLTJRozEn0m/LOiWDh72SM0is+ou+IzmRnAjiXr/pFXCH8m"
    "3GL9QMeW9fREiM3Z63vpdx3m345diospfj88A7A9A5vsFcQiCN8Se/+R5XiW4cIZ+e9HFt"
    "t5Dw6/szE/ibHON5SsMi2uymWWCIHRAkz4lJdKX1GULdN3ZPNURv0CTWmncdFd0fKKWsYx"
    "Z8Qyzz4SqTwl0WDCBgSpNBTi865Vqj3qUtA2gr1mj45leeXJSSPIo5eqqLKemQ8x6vVHBU"
    "1JjCrTY/UHUdC/TGXpDMTpMtOwcsIKlis0nfiIGteYdiyTwKvdooOf+OY1RD/Fm9ahClbb"
    "tYNsZ3pGizVEd527FSZBsSH6ivrznK6RzjliNSju3VaUmSieO+Ti6TAWSkNhdB3r9JtTGW"
    "dlVkFP+CpPC1yVXu0UIhFJh30Bm1hBtpJCpCrjfkXdxhRVD0o3dtZHzJEUel99DiToFA/W"
    "50EkRabBL/WzRM93OZVXpITisfXM1WwmAwlNf3dF65Oyu6wok6bqhzQzNRzXiywtgT0jeJ"
    "E2pZoClUkW9gLS7mMf2ZCYCJniwVkQEyEMTGwyROabqWPN22RJbMKps9ynqXqw2A9iCyda"
    "YGHD5Ie4AiNncjU6488hY4Je/YISGU66t1NwS3WxmlDMt4hgH2TTtPR/LBWreFwRq3icj1"
    "W0HevZKKx3V45xkmb/YD59J4Hy6btSkOFWZlMwqOHONJEpsw7QOUKF9mq0/eJ8TeVLfUTQ"
    "j1X+iVCXe2PAzEn1JWSNdeaYDVPEsHZvEdctt+bJz5Ci0/J+8tgn9oQ3zjFEXia28+qdPv"
    "bpzQz6VJhWuUIFTtD0Yq6AaxDkAfAOB2NHY9PSnzoapTsnHgajdB2mJGn6whRs26ahJ0zP"
    "3WSHCi0sX7T6GWQmE1oYurlzLK+obxSTdF9lDyYgoRPunReqID/SF0SxGK1aTF5aUYVWXJ"
    "sJ/S4ZvCALbIqo81/0bqMmVcWudaIo16rYFQfTNARZPhVvN7/glfCmJnAK2Ns7dH45umbS"
    "klRmMRH82DCnWLIm1558z+lQBsLE2aZl5vfum0zv8mCX1uZ4UmCZ6XedeSFPRdEdoQuKC1"
    "TwvlFGqFpClQyaIjdb4XHn7SDaooDKnRkhluJFQXmvKZq2mwfwBv75DSxAg6Io/PjusDIQ"
    "Hy5p3JAkGYz/O3xqWFg6EFjOhI+NXxLh3fQMJaxV4B6FNB+67zhgQBSlBQ3ThKA9YV/MJw"
    "7ZVic146KTrofI1cNmnuPJZAsU4cAJgDVByhlQHJ+rQjF3G4q5E/9U16SQbbtMWvaydhve"
    "rbhZ4yUqh3K1JTFF2B9D4iD0gYhdAlIqBkljo9NMdrgXvqw8iwa1/ZresIik02lQkxs823"
    "ewPuO5BdjQg/2+y+4wMVxtDeZkKXvDoyRrxBE9PlX5+3SeVdrCMbwiXXIVp2LCfjIKhu8R"
    "EKG7zynL92pPp5imN/wRQw4YNEQiWodrq1Q3/YlsVIZKn9I1sXC/fJw5H8ZuEhXcM6Wi0E"
    "AibgyrbCMuPCKdSRXY9wqOY8Oh/CdYMdMpBM7gTLrhoQX7x7fF/cDkNIRTWuKuUWAM2XDb"
    "NW0gfKHRZtiVO/4sQNM4VYWhI3P2N3GecZ2D50GnK4oyrDj8LN9P1gmnjDmdNOYkvtwCoa"
    "A8F16abs1ceG2JBvefzyEZXpiIkI/95/hPSIhBLQ89Ebt5nMW2kuKZBE9rxgwkSDofMQDH"
    "Vii23ZkF51ZMHB9bacyRGqEZpvFcpMFUpaoNSVrMUxtdqXP0eWYtRJ6W5MIcbXrNP/vNZb"
    "FV8u9LkX9V+sB95nqB7TXvNlehhtvcz1R2RpWdcdeBbyuzM5atBxuAVoVupqHejX1phAsL"
    "9ozwilI9Hpav0QNtw/m7MTGD/JPI9j2eyBAyFVJ/PmaXmAKYKsxaZEdq0JKqu9M384equ7"
    "PlujtKl9szqV7pci+R6zK6nFI2lLKxa0m4QSr4EqNEKISuH86fVEICmXdP0N9q7P4Iu0+D"
    "QrXBfVqlN7hPsooDZGAic5GlPMxab00sfkJ/KJK0o8xxEj5gsKU7lv844+ciihSJTbZc0x"
    "3d0FPM8eOOYi0g5/DWdlJbcxvm3ybGwQASIWLKjdxJPcozvLLcwSX+45BgDzWpEylN6qRC"
    "kzrJa1LJkeVwLk8NnCHbh2xVVSLzNtIDp9axGp7hFF233cObwF55gJX+qKwGiuvKaqCsBt"
    "2CtK8F5KI8AEVacCJHQIUmnKpRIONHi1IWc8WV5tMoiLJjuYQAPLmCSDcdJkFg+m+Rf20L"
    "PWygkhcbj2R8c4ypbIxzRkUOXqhez36m67CRMI2FXNci77SWGEG9Fxb0pf3F5ZSy/ayoI7"
    "ZGmHliVJAYfP0x8fEo+8Fu7QeqvFMLaf2ClSaHcbmVJkHSZTtNKq1skEdfDtlMnoETmWpO"
    "7KnyPAMn+XpOSpndM7VGRplVga1bXcvSMpQssmmq7oO6nURmDaHPy5A1OFBI3I/tezP5zz"
    "ar3qtw2dYynSZOozVEWT6tZK+XmZVsSC8CqzmQXjtaZUTvlpmV4BcuxCkesEEmlOP2rV/f"
    "YGAf8XJQYP2K7g2rrF+8iow2wUtp61cQpyFgd0M7lOHw9IpD5PpziA2HTCPfRpeItcwf4V"
    "2foQVP2M4ewY5BXDRe8gesnI63rX4eKH9AmM/G/uSReCL3yQQdYDQlC+TAGVAMjw/RzFqQ"
    "Z0iZAkHtqVD2w4YhJxPBl3xeSBkTV8wz7YksKyxbymKzW4tN8O3msa5KJZQgai+X0Ost4b"
    "qb7EA89ZQWp2+TBz9LqTjQPDHdWowoaUDxo3H2ufXZkaNX3GiSYW4tRuRIFQ/W40GU724t"
    "NhRRK06suTa1W2exDcSTVRYlnSw7gd6nPJ1xUdRmBfxJqu6yIFQcF4Y3Q9TqUZHLQDnMu8"
    "FKwpcDXbLC99UhOxpT1hsbg8F51YWC0F0z7qqE+y3Cu5WE+yrSU0V67tr109FIT27P/mqZ"
    "pm8Pyszdwe3haou3w5/cgtGbG47T+QMzZmkcGKaXjYzeNfp5oOO0+ZobvJuemgzEjqJIjA"
    "ZW7YAvyrC983V0qAzbndMMlGF71xxQhu0O8kMZtjvCDWXY3j0PlGG7K5xQhm1l2FaG7Rcc"
    "8J870jRE5JlQZFHGMGFYkTyDs5mwdOVYWIGlciwox8LO4VWOBeVY6COk/XUscLt3gUdBcK"
    "PKlRDYM2VcCDZ71qJoMbOQy74KFyS2KIshkxPYhkE9w1uicPcoSgyxXiP1jPwFxvrBl7vf"
    "r74ePAzIHBvmw+BwUGC+Z0PT+H3NtBaVBfSU+X635nvOpTrbbUSwh9vt22OZ7ZY9Vbrd8n"
    "vp7db1x/9LdK9mKoE01WawXv1JtyfYnJxIpQ44qUgdcKJSB8ijv7+pA1QevH3jeohRNg9e"
    "TuouFxLjzyM42Vdg/auRk/yCN9LDL6BMHi+1xW0wefu+wjUlZAJfXTOkPiVa2UuULHNSHB"
    "dSByTeyL5CNLNgtWoE0GdL7Gv7CM9ct+GJqdG0osTN5W+XvJ19RUrUkG8G0j20sa8ANa9K"
    "smeVSNLgBPU/mqDj7u1Glk6LsT5GySQc+4tTIpi6IVRxAPe+oLV5y/Vf/w/sKRFU"
)
