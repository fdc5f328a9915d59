"""The variables of the direct Alipay and WeChat Pay channels (the platform's names),
part of ``payments_project.variables.VARIABLES``."""

from __future__ import annotations

from payments_project.variables import PATH, STR, Variable

NATIVE_VARIABLES: tuple[Variable, ...] = (
    Variable(
        "ALIPAY_GATEWAY_URL",
        STR,
        "https://openapi.alipay.com/gateway.do",
        "alipay",
        "Alipay's open platform gateway (its sandbox: "
        "https://openapi-sandbox.dl.alipaydev.com/gateway.do).",
    ),
    Variable("ALIPAY_APP_ID", STR, "", "alipay", "The platform's Alipay application id."),
    Variable(
        "ALIPAY_APP_PRIVATE_KEY",
        STR,
        "",
        "alipay",
        "The application's RSA private key (PEM, or its bare base64 body as Alipay's key "
        "tool writes it) that signs requests (RSA2). Give this or "
        "ALIPAY_APP_PRIVATE_KEY_PATH, not both.",
        secret=True,
    ),
    Variable(
        "ALIPAY_APP_PRIVATE_KEY_PATH",
        PATH,
        "",
        "alipay",
        "Path of a file holding the application's private key.",
    ),
    Variable(
        "ALIPAY_PUBLIC_KEY",
        STR,
        "",
        "alipay",
        "Alipay's RSA public key (PEM or bare base64) that verifies its answers and "
        "notifications. Give this or ALIPAY_PUBLIC_KEY_PATH, not both.",
    ),
    Variable(
        "ALIPAY_PUBLIC_KEY_PATH",
        PATH,
        "",
        "alipay",
        "Path of a file holding Alipay's public key.",
    ),
    Variable(
        "WECHATPAY_BASE_URL",
        STR,
        "https://api.mch.weixin.qq.com",
        "wechatpay",
        "Base URL of WeChat Pay's API v3.",
    ),
    Variable(
        "WECHATPAY_APP_ID",
        STR,
        "",
        "wechatpay",
        "The app id (official account or app) payments are made for.",
    ),
    Variable("WECHATPAY_MCH_ID", STR, "", "wechatpay", "The platform's merchant id (mchid)."),
    Variable(
        "WECHATPAY_MERCHANT_SERIAL_NO",
        STR,
        "",
        "wechatpay",
        "Serial number of the merchant API certificate whose private key signs requests.",
    ),
    Variable(
        "WECHATPAY_PRIVATE_KEY",
        STR,
        "",
        "wechatpay",
        "The merchant API private key (PEM, apiclient_key.pem). Give this or "
        "WECHATPAY_PRIVATE_KEY_PATH, not both.",
        secret=True,
    ),
    Variable(
        "WECHATPAY_PRIVATE_KEY_PATH",
        PATH,
        "",
        "wechatpay",
        "Path of the merchant API private key file.",
    ),
    Variable(
        "WECHATPAY_API_V3_KEY",
        STR,
        "",
        "wechatpay",
        "The API v3 key (32 characters) that decrypts notification resources.",
        secret=True,
    ),
    Variable(
        "WECHATPAY_PLATFORM_CERT",
        STR,
        "",
        "wechatpay",
        "WeChat Pay's platform certificate (PEM) that verifies its answers and "
        "notifications. Give this or WECHATPAY_PLATFORM_CERT_PATH, not both.",
    ),
    Variable(
        "WECHATPAY_PLATFORM_CERT_PATH",
        PATH,
        "",
        "wechatpay",
        "Path of the platform certificate file.",
    ),
)
