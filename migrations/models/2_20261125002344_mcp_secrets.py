from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "mcp_configs" ADD "secret_box" BYTEA;
        -- Aerich emits NOT NULL at once, which fails on the configs already stored.
        ALTER TABLE "mcp_configs" ADD "secret_names" JSONB;
        UPDATE "mcp_configs" SET "secret_names" = '[]';
        ALTER TABLE "mcp_configs" ALTER COLUMN "secret_names" SET NOT NULL;
        ALTER TABLE "mcp_configs" ADD "secret_key_id" VARCHAR(32);
        COMMENT ON COLUMN mcp_configs."secret_box" IS 'AES-256-GCM: nonce, ciphertext, tag';
COMMENT ON COLUMN mcp_configs."secret_names" IS 'names of the secrets';
COMMENT ON COLUMN mcp_configs."secret_key_id" IS 'key of the box';"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "mcp_configs" DROP COLUMN "secret_box";
        ALTER TABLE "mcp_configs" DROP COLUMN "secret_names";
        ALTER TABLE "mcp_configs" DROP COLUMN "secret_key_id";"""


MODELS_STATE = (
    "eJztXFtT2zgU/isav5TOpEwbCu10dnYmgbRlF0gHwvZGx6PYIvHiSKklFzJd/vseyfcrdi"
    "DUSf3SEklHlj5J5/Id2T+1GTOJzbd7xLGMqfYG/dQonhH4I1XTQRqez6NyWSDw2FZNcdRm"
    "zIWDDQGll9jmBIpMwg3HmguLUSilrm3LQmZAQ4tOoiKXWt9dogs2IWJKHKj4+g2KLWqSG8"
    "KDn/Mr/dIitpkYqmXKZ6tyXSzmquyQireqoXzaWDeY7c5o1Hi+EFNGw9YWFbJ0QihxsCCy"
    "e+G4cvhydP48gxl5I42aeEOMyZjkEru2iE13rEdlmq6fDEf62WCk61oNgAxGJbgwVK5mP5"
    "FDeNZ98fLVy9c7ey9fQxM1zLDk1a336AgYT1DBczLSblU9FthroTCOQP1BHC6HlEF2f4qd"
    "fGhjIil8YeBpfAM0ywAOCiKEo131GBDP8I1uEzoR8mh0d3dLAP2nd7r/vne6Ba2eykcyOA"
    "be6Tjxq7penUQ9QlkeqhoI+803EN0Xz59XQBdaFaKr6pLowhMF8Y52EuG/zoYn+QjHRFIo"
    "m5Yh0H/ItnhGV6wB2iXgSjBkzzPOv9txTLeOe5/ScO8fDfsKHMbFxFG9qA76AL1U0JdXMW"
    "0iC8bYuLrGjqlnaliXFbXNVs26s3QJpniigJQzlvPzTdY+o1ITYR+ijElL1JcaNiPWkley"
    "b9qQEmRMsUBi6hBsInaJMHI5cba11Drd0fRue/hTiwDRpJzu2TZ3bsp9qWO1T6FMypGbOa"
    "wWVxPxu4rM542emKmuOoNpWj8ssVCI+GdAUz0BBOrHbS2LfH5+eFDDJLuuZW5LmWUO292W"
    "Wfvj0qWGnC6ST9rblv+++lN7/OOnTtrO3tP0qVJzL7fRwhIw/xr2IxRYyoL4IDZFpaXMcy"
    "UD0i0xIN0cAwIHMzpKSZQPoEZYM1JgRxKSaVPii24Hf6yhQdGkzhpSe+FvjBLwR4fHg7NR"
    "7/hDwsoc9EYDWdNVpYtU6dZeap3CTtDHw9F7JH+iL8OTQfrYhO1GXzQ5JuwKplN2rWMzpg"
    "iC0gC1xKonFWidVU9KtqvelFUPMIotuz/62KpHFrSq4YqJPKT1aq6reIetyjiASXSz0L5l"
    "DrEm9G+yUAAfwjgwNfIslO+7nfvdrCekUWmkiRx8HTpQ8Q0Fc4cZE+FZ9N7Zfu9g4Hlc+R"
    "51zM0FPw88Y56Fu+9Lvv37lNih/5uP9LHXywaBnTjtgjFbN7Bt3xOmEfSzD91sEk6rDM6O"
    "9z9A/HVpTbScyCyq7JSFZTNjLkcN7SoGZT0VVj3hCKQo8bx+ToQAdDi6ZA5iEIrBw6HQgT"
    "Cog8YLCMXk4JC3WEgwiNIgVMuP5FbQf0749zVUogq2b/ehR9tg7MGDMfV/BujiWCxo35J5"
    "lck8XzPU4PJ8iZbKq0nlxYEnVAKRo0T6YPsIpvngx6RS6I9BbFWwB6rlcWHvD4dHCdj7h6"
    "MU2OfH/QFsebUG0Mjy/LogDROBzYnhEKHLnzmeSfFeT8s9/o6PKfGxa9lg/Pi2fF5dNa6g"
    "4JINBcOHvHnxtMltxsnwQb8ii9zAsVj3ZwQbzMdpMMpgNcbsptpKJO3BTreCOdjpFloDWZ"
    "WLvD+elFqyKHYWpcD7cmnFtBDe4WkG7r3B2bPu7t6zd/vHIM8gLu4gw5qDNyjIjegggSf3"
    "PhZ9f6eHxwIw7x+e9E4/h+ciJGmOhifv+jkno/95NOi1xOmGU2gtcfo7rnpLnLbEaQMgXS"
    "VxulK2yydR87iuiF8tYbpiVG61uwfCdah3k0BeLXjj3yh4wpHnM2CKMOeW3C0CCh0yt8G5"
    "c5CkQ5GiQ6GN+qVqOSxm/sWFFT2n5q2H+LUFf/mT/kO12w8BzPoURsycsisPUvGVD0Aio9"
    "d8rpQpfCj6+H5wOkAXQc8XGjo8Q3C60Mn50VF7C+NXE38OK7qEMaDuLKOfE6AHsk0mATW+"
    "4ILMOuqEd6JzHZznZSLCF3tVCMK0UxPjB/cq3/UbwUGqe9evSfH3Q+zu0eDTqJz9SER5Qf"
    "M0JZJEvCyFVkxUJaXuRVOtD/4rYZ8Ukp7trL8CMbl2DZZfg5bnKFb46xnxVuE5AhevhncV"
    "E7mHi/VIzKOkeiEoIdRUnqly2L38tHSPiYkscW/m8U6HK2Ha0052VdhzRFvCoZxwMFLX4+"
    "9JPKRv268nxHcSEDkbrUlExAjzKy2HhVDlnTIKQkCLqtdsKCgGMoteZJB0ADOZ8iU66Hpq"
    "GVOVRopCCG/AXL4CwdzJVMUTPOeCzUP2vPybFctwCwo/740KX7w6uxB/NJvN5V56iHEAQI"
    "KUjKIlFH6r1zqapnKTTMFupbtEuyV3iXazd4niI8vgXEwYpMRa0qA+aZDQYzWuEyXkHvFC"
    "UViytjeK2hC1WNNsbojapuI3bdXbVPyvjozbVPwap+LDF3XyouDYSzwlkXAic1HlrZMw26"
    "0CVxqPTr3Mr0yUmypwVU39Uo9qw5RfE49s6yBLyi/y3jxZyTNy3z5JE0PyoSrRXSdDXyVS"
    "DXHW2ZxUyIt7uYwgmx5lyNvseAOC2WCXZLAuDmdjIk0OaBVNrvSEfPNLnkBvzPU/LFQlGQ"
    "6tSj4slEmHR4ehzi5PSjXfH9BSnF9ct82wSZTaM3zN/ljpiow6qrMCucLrkTFKmBfPsgDY"
    "j50raqPdDYt7qkS7bYawzRA2PS5qeIZQRaU5sVEQrRbHRTLgqxwSzaEt+LPXU4Y47BKOLB"
    "ql6MCIWCahwhILNHfYD/iR+7b9cp3Uy/vlBCra0fDj4HTrQiMzbNkX2lMtHrq4MnZRWOiq"
    "XrfZtQddm2ZrZGSiVqlOXBIKNDkqWTLNttOtkmaDViUvaWbSbNwd/0sMUffl2ITUw2D9az"
    "/Vu/rvyLZu7+/o9rZJnk1b9aIkT8YbL3YS8/30e37makN99CRllvys1PJgJT5jtYlIhXcC"
    "l8couHi4KfA8fGh2+z9bdX8d"
)
