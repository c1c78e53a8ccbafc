"""A conversation's count of its messages, for the limit on messages per conversation
(expand only).

A column added nullable to one table: a catalogue change, a moment's lock. A NULL count
means "not counted yet": the store counts a conversation's messages once, under its row
lock, the first time it appends there, and keeps the count from then on. The previous
release writes none of it, and needs none of it.
"""

from tortoise import BaseDBAsyncClient

from faceplate_models.migrate import briefly

RUN_IN_TRANSACTION = True

UPGRADE = """
ALTER TABLE "faceplate"."conversations" ADD "message_count" INT;
COMMENT ON COLUMN "faceplate"."conversations"."message_count" IS 'messages stored, kept by the store; none: not counted yet';
"""

DOWNGRADE = """
ALTER TABLE "faceplate"."conversations" DROP COLUMN "message_count";
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return briefly(UPGRADE)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return briefly(DOWNGRADE)


MODELS_STATE = (
    "eJztXXtz2zYS/yoY/lN7RvGkTuzkfDedsR238TW2M4ly6cMdhiJhiWcKUEkwsqaX7367AN"
    "8vk5JFUSpnOo1FYgnwt8Bid7G7/Eubcos63sEpdW1zop2QvzRmTCn8kbkzIJoxm8XX8YIw"
    "Ro5sasRtRp5wDVPA1TvD8ShcsqhnuvZM2JzBVeY7Dl7kJjS02Ti+5DP7T5/qgo+pmFAXbv"
    "z+B1y2mUUfqBf+nN3rdzZ1rNRQbQv7ltd1sZjJa5dM/CgbYm8j3eSOP2Vx49lCTDiLWttM"
    "4NUxZdQ1BMXHC9fH4ePogvcM30iNNG6ihpigseid4Tsi8bojPb6m6fr1zVD/eDHUda0BQC"
    "ZnCC4M1ZNvP8YhPDv8/uWrl69fHL98DU3kMKMrr76prmNgFKGE53qofZP3DWGoFhLjGNSv"
    "1PVwSDlkzyeGWwxtgiSDLww8i2+IZhXA4YUY4XhWtQHx1HjQHcrGApfG4dFRBaD/Of1w/v"
    "b0wx602scuOSwDtTqug1uH6h6iHqOMi6oBwkHzHUT3++fPa6ALrUrRlffS6EKPgqqlnUb4"
    "3x9vrosRTpBkULZsU5D/Ecf2crJiC9CuABfBwCdPPe9PJ4np3tXpL1m4z9/dnElwuCfGrn"
    "yKfMAZQI8C+u4+IU3wwsgw7+eGa+m5O/yQl7XN35oeTrNXDGaMJZD4xvh+wZZ15luwhxRt"
    "ZsGdys1sJNt4tXYz7ZT4HnW/84g3o8wC/GF6TG1BZtQllrEg3JV/TmFSTQbEZmRqmy5/Bp"
    "NCeAdahnGrP+3xPfQvLQZRw970YD+ELZxbGramDzPgKwryCOoQRt+2HvQAIF1SB3QIYLBM"
    "NPkIwE3++NZo0/706fJNg13bh/EcIM0y6/HxzVv7153PTGQ1wZ6OD/D/r37Q2l+hcjG+ON"
    "7PLjz57tXbeMyguntMTNHlbUYLFoRcDGTv0/B8P7ue6mw7r2tsOq9Lt5zX2Q1Hrtc82Gf2"
    "uFQflWtdjwgfV0w3iHlC3khJFE+V2vrqPw4PX7x4dfj8xfHro5evXh29fh4prvlbVRrs2e"
    "VPqMSmOBNqtQkNwKUIm24UcOUN3BH2lJYoAinKrC4QkB6Ef3SHSfX1L3hB64Y5i0D2VWA9"
    "vLy6+Dg8vXqfUhPenA4v8M6hvLrIXN07ziyb6CHk8+XwLcGf5Leb64usUIvaDX/TcEyGL7"
    "jO+Fw3rISYDq+GqKW47s+sJbmepuy53hWuhxgl2B6MPsH1WJ2pq1YkNaAn1C26q+s/oknk"
    "NPg0unlof+QutcfsZ7qQAF/COAxm0gJAAxX8U/CY7YQ0vhpLIteYR+ptckLBu8MbU6HUrd"
    "OP56dvLpQ+3L5JdM4ZOmeM4LVzhlHq/qDKPDITLWsaSTeMEnNiCCImKHwIvyOGtHRO4F/h"
    "UopXpmBywNi9AfEoZcRwOJg/YMSQmQH6neAEdQ7oxv5KiUONu7z1tL5uljer0tuJ/aiBhf"
    "ZVCmFlZckB2WJRYWehICwewzK9clBKSzsjn99efLggtxq20k3DcbxbjfxAnvfW3qatPWEL"
    "hzYx9iKCpWy9AMSuCOmMv7aWR/GwwqN4mPcoKtGgo2hoqGrkKVeY3+0Ar6FgdAxPhGITJW"
    "gkLL0Jn7N/EsYZPZFXGZ3TuG09q3CVZRBzJRZEDQ6C0kTt2d3PmzKBc4fIcRJP2I5D5oYt"
    "0Dl4x13Y2QAVeAwBsYU8CLYuZFAjs3zFY6SYFR4VOLgCRpT73JM0KzndW1oWUi0akJnLv9"
    "oWdUGXWHiCTnW4MJ2JAZmaMx32X9xPV14FT+acTzJpSoWBe0gTJiVptoFJcjXMZo5tSp3m"
    "O4+AuOoqO6TEBLD9osOqUgmWo1tKiLW1aALNG4QY2IzWgNzTmSCjhRRb8lq4lzAuiHwlap"
    "GFOq5pX471jsNyqLfThdQ7Dv+OXO8dh73jsAOQrtNxmFMkCpTvs4Dyx58/UCdy8xUjfRUb"
    "cDsCdmq1oz1VZiw2gWkIzzmHx+wSTuv0Qb/lGZ9g8vqgyuc84fj8QR1f8xVokAsCBiUxPL"
    "DNlI3M4D9vTl0yomg3g5lm+SaqoKBj2g6xBbFDtRRDCsZgQTOCL513Mq/h+ct7l+nDzAYx"
    "jDpHDQ+vRFEPpXEfrtNJB64xLbYBqyJIYpptCR4ZSKMPZbAMd6Me6MQwwEaWXsuBJIm11t"
    "AySFNuj2WgGcR0DW8CQmvO3XvJKZQhxDFmHtjxwMLV/SkdNxXyFmLvFyhfmNtpIdbyC/QW"
    "Ym8htqyMD7YjtOTq/P05Z3f2WCvQ7eOblQo+HpiYsl3TuHugYlQpfeEpktTJQU0n0DlRxz"
    "AD9DMbBAdHFNsx1ENgsAg+pyIS/+meX6Dm/x7NfAnbH6vku/W6+JPr4vLfHNDlsRRh+y6H"
    "zXcsOyuQDA2SswKKPjdrhfNGyhCIAiFyxrlDDVZix8RUGfRHQLYu2EPR0i7sZzc371Kwn1"
    "1mLMTrT1dnFzDlJQ+gkS1KDEePguIvdPzZMCgiTdf+jE8I8ZFvO7D5eQfYX1MxLqHwwtgh"
    "9V4dDYwIQL+ni0Jtv1z25wg7HE+nwShDboz4Q02vS2o/eHFYYzt4cVi6G+CtQuSD8WSdX8"
    "xwF5XAB3RZwbQQavF0A/fTi4/PDo+On/10foVRDmDMDIhpz0AbFPRBDIgwxisvi7NgpkfL"
    "AjA/u7w+/fBrtC4iy/rdzfVPZwUr4+zX4cVpHw/R+z36eIid43ofD9F7uzoA6dZ6u4LYiC"
    "JfVxw2UeHpSkRo1MucYvAQlcuUTNH5zpMpTSdBihP+lCoEnkV7no2TR8BFl84cmSYfB5FD"
    "m5y7a0393DL8KW9jjPoBuZxOfQnFCaGWCmIHGpcGcxh/g5TyoDPPHjnw8+CW3bJTlW8Qn6"
    "EbHtg9jBouGBPjKYWZheMLcxSwgovNfLA4ZJq64VI5xKAp2ZNGCLDuln0JrsE8+zIIUhge"
    "BPli0ZmYfNknPnPgmUHGAz6GGA5K/QWZGJ4CCnuSQMl6HPOJbU5umWl4FE/9J9BWvkzQNa"
    "CLQ+JzRvaSfeOr4Q3bQmAt8uWOu/d6qoHwbln2VfYPyEcOjw/RkVlvcmB3dE7k+iauwQAS"
    "zzSYhykCe/FDB0S+5v7glk34nH7FwiIGW5ARkJgTdb6n0ubgZQ/IEH5FIbxymkxsZMcCuh"
    "/LXLmvVHo8b9mI8/t7SmeSvb5Iv+sg/3ZwKc7F+LJ/gmAL23DgFZQQxLkE7z/kruC2RwGB"
    "Lwccdt69/S8w5ns11ukywRTJqR5Im7S6Wi95LgRGDzCRS75Wnl7BAITvyj+b9Is0pZ1G+X"
    "rBk281cvmRgDAn15/evcsNKeaMEvMwSWrVhYkGEz5AkdaGQk3vRkmLUZeKdiXYG/bocq6c"
    "GNWQRy8VgF4EeGY9xKg3HxU+qsaoMj1mJ0R/8LDZg4eN6d8tpuZklAzYE5U621bKoMvLEm"
    "UvmD/N6eApsEPaLh/0aConbSDVtkGsrIVK2jJev++P6xwCZQ3XxBnQce0CfUMQWqVnQCUF"
    "+rrkY30KCTK8+GVY7eFOefLC5lm3dxrxqujn8sOINNUWpP919uxNIqnsoeYcSND1PFieB5"
    "F2VTPPMmq/FfmVxoh/leYn6EDKAt5cLnhSp62ryqSptkObubPddJUEBD54kTa1mgJToi7s"
    "BaTdxz7yrYAKmeLBSXDWrBwvsBgit8ady6dtsqSqNkW5uK8sTtFFYZ8sU1FWoCKURieyHb"
    "Et8uyHJysXsp7MfPTgFpsJJSn5IcEu6KYt1NMJa2g0wThJs3swH7+sgfLxy1KQ8VZmU7CZ"
    "7U1AeTS8ZvX8c4Q92o+j7YfSrK6ojwi2Q8rfU+bJUwoHBsPMxYAw7k4NGCatWQm4bSFucq"
    "9hRl1I0Wl9P5lOJ6seUjJzbZPiQRTsvGan0+nExGb3OKwGCyVJsxVrBY/MUB/AU9Ng7GTk"
    "cPO+o9GPfVmoTrGjD7krF1rbGXxVJ+QuPP7NsbzcdE+QdN9kDxYgfvQAx61MQZkqFUR32K"
    "16TApOguvCXkDax75l7bvkoX5dYFNEnZ/Rm40mNDOVu1eMKswWAt/OSftodGHB0i2OMszP"
    "5ScAuX6BpW7O4EfhTS3gFLDXN+T0fHgJ2lKtglYYV2i3V89qS+BOb2DoctWnhlXgdNjucl"
    "ZKVYgCF8LTFakr4PtGRWQa6Qt10FTlnAozJNeDaIu6l/TTh1iqF0W7tKHW1W7psCv85z06"
    "N7SiwOv47qAy9hov6dJHUjP++jNONUMZ8QSdQur4SF5SEb3sJPkRPjz5w8oApu+66BtTn+"
    "uzHQfj0ZTrLF9rYF2dNAyFTXrVo1MMWHmuqFNgTEWAJgDWFalkQHFIZh9luNkow40cvXRN"
    "YVz3aUDLB4jdhnctJ4ixiMqhXO0kSxFuj49MC937apfAKmxBnckogWUW7oV/r9JsNpv5DQ"
    "96IpJOV05MbvCw7xgm1uSTQw/2+y6f9Kjh6kswJ0u5NTxKskZlZcmlKt+n86zS564timzJ"
    "xzgVE24no3D4gqIK3X1OcV80Xk4xzdbwRw05YNCAqEAUaa0y0/GtugEH/aeHu6YW7tbxXc"
    "49v5nc9KHh3WsF/hF5fVDlGRHQom7lRQzjpNP465oY3MAtLo/5ByoDmmQcd3LAGAPhcn88"
    "kR6oAj/Ikz55+aLqy+T/SvzUpzoD8gq/R/mXOk0+naGj/CnGAQCpzbj3vnTS+9Lylzo7tw"
    "OkHANHtRwDRxWOgaO8YyA5shzO5fmFGbJdCHltO8cwJccyCmpVhckUXYs1JqMrW1tkstc1"
    "/y66Zl+dbZe5XuDn7Kuz9dXZNh5xMtiO6mxRxEWRFZyIxqiwhFOFDup8iCDKe5SGK8sHrK"
    "iaXrnQCxnGonJWw3ATsH+LPkWwhh6eoEwWjKdmlaoYUz0brVjPRA6/c9yoZz/TdfSx5GAO"
    "1OtaJa/qiRE0e2FFX9pfVJEp188jRbqyHGk2KswuXn5MfY2oDvgP+hpRLeQGBJImh3G5ly"
    "ZB0mU/TSo3LUjGr3mWko7oOKpTEgpalUd0HOWLQvXG7I6ZNXWM2T4RZ62yLK1D1UU2TdV9"
    "UNcTMr4i9HkdsgEHCom3Y/t+mkjzPl1q8+b+UulSicI+reVLbbWYeZQNaSHwOAfSsqNVRm"
    "ydmHkU/EJBnOIBDDJhHLfv/fqEA3tjLLQC71d0b1Dl/ZKlaHTLWDT9DKeC3Qv9ULYrE1kG"
    "xPOnU2rJDJVPw3MCT5ZNZNcnZC6zvqGJ4drUw29oYgOes/HW1c8tkw2U+2zkW2MqVJSZRf"
    "ZUEX2Xz7GePjQfkFSV/KRE9PZXDDmxFF/yGTh1XFwxz/DrYxWerd5js1mPTTB381hXBW0m"
    "iNqL2ny+Jlw3E4cpg3z1OFC+YXZAgrLnwOopAEsxouQBPT9WjvNfnh05+p4bq8TyL8WIHG"
    "nPg+V4EGUWLMWGIuqeE0vKpnaLNbaBeLJUY81Dlo1A7zOZOFoUtVkBf5KquywIDce5LSaE"
    "8S2qlBkYh/ljsJLw5cCWrDj76pAfDYz1lZ3BeHjVharSXXPu9qUNtr20QR/p2Ud6bvrop6"
    "ORntKf/YE7jj/Tytzdwe3B4x5vV7Zcg9NbOo6TvuKcW9oIHNOLlZzeDfq5ZaO0+1o6vFfN"
    "mgzUjqJIjBW82gFfesf2xuXooHdsd84y6B3bm+ZA79juID96x3ZHuNE7tjfPg96x3RVO9I"
    "7t3rHdO7b/xgH/uZSmAaFfKSOcAcOUY2X1D6g1CEvvDxYewbI/WOgPFjYOb3+w0B8sbCOk"
    "23uwIP3eBScKihtVRwmBP7POEcIM2nJG5hNOPJgVHmpsURVD0BNgw2DCFgsS7h5FhSGWe0"
    "gzJ3+Bs157d/P54sPerUanhu3cavtagfsehqbL+7rD5wq63n3fSfe95FKT7TYi2MHt9sVh"
    "ne0WWpVut/Je5hMF/ui/1Cz+Cl45zGmqp8H68SndnmJzdFSrdMBRRemAo750QH30d7d0QF"
    "8Hb9e4HmKUrYOX07rLlcR4egSZfQXevwYfczuTD9nCGVCmj5f64lYEakdT4lNwTThOspVg"
    "esuVONpFeKbmDFvc2eNVv9x5/v5cPmdXkYoK7y+PUVjdfxfhSeejL49RMvt9d3FKRDGuCF"
    "UcObkraD29y+jb/wEpGLIy"
)
