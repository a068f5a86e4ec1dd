//! Fixed keys for unit tests, made with openssl (commands above each). They protect
//! nothing: never use them outside tests.

/// `openssl ecparam -genkey -name prime256v1 -noout`
pub(super) const SEC1_PEM: &str = "\
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIExXooqWH5O3Jksx8sJFWsE1hQisJpXh0/TKTq52hz/ooAoGCCqGSM49
AwEHoUQDQgAE6kDt/vASZId6hMcUBl+fpMxgr5SQwKbQ+tIncGxGv56/IuAlSGP5
9VD/EFasrrGnQlZxTmgF2+s5VgSEUUDxRg==
-----END EC PRIVATE KEY-----
";

/// `openssl pkcs8 -topk8 -nocrypt` of [`SEC1_PEM`]
pub(super) const PKCS8_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTFeiipYfk7cmSzHy
wkVawTWFCKwmleHT9MpOrnaHP+ihRANCAATqQO3+8BJkh3qExxQGX5+kzGCvlJDA
ptD60idwbEa/nr8i4CVIY/n1UP8QVqyusadCVnFOaAXb6zlWBIRRQPFG
-----END PRIVATE KEY-----
";

/// `openssl pkey -pubout` of [`SEC1_PEM`]
pub(super) const PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6kDt/vASZId6hMcUBl+fpMxgr5SQ
wKbQ+tIncGxGv56/IuAlSGP59VD/EFasrrGnQlZxTmgF2+s5VgSEUUDxRg==
-----END PUBLIC KEY-----
";

/// `openssl pkey -pubin -in pub.pem -outform DER | sha256sum`
pub(super) const PUBLIC_SPKI_SHA256_HEX: &str =
    "c1c4b1b2bd2022b7dfb0e93019b927f841ebdeb705bee3b06b855834bc1b37b1";

/// `openssl pkey -pubin -in pub.pem -outform DER | openssl dgst -sha256 -binary | base64`
pub(super) const PUBLIC_HINT: &str = "wcSxsr0gIrffsOkwGbkn+EHr3rcFvuOwa4VYNLwbN7E=";

/// `openssl genpkey -algorithm ed25519`
pub(super) const ED25519_PKCS8_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINdZsPbw4a4XjHKuUUMwL8zUvzqQ/RMVCgCv9VHMupy5
-----END PRIVATE KEY-----
";

/// `openssl pkey -pubout` of [`ED25519_PKCS8_PEM`]
pub(super) const ED25519_PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEABAq8fo+lBTGHRPcAHdenVpp4bUYQV2EORXMfywFvCIA=
-----END PUBLIC KEY-----
";

/// `openssl ecparam -genkey -name secp384r1 -noout`
pub(super) const P384_SEC1_PEM: &str = "\
-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDAN8h1Q6hGX1r0adjjYLtRhTshWaHTFqQx4ZraNjELv8p3D9m7mHdMk
tlilH2BrhpCgBwYFK4EEACKhZANiAAQs9Ps2M2Qqk9bGOIqM7/oxaz/wZRFuXlFr
Wj+NbZ3XPF9Im56LrnF4tFp1F4YvdgRvsfnpdOQqB8mc4SKQqzKM0F/rF8VQwZFI
qCKBV9KlkftNx+bFwNxCS40jmbpWxG4=
-----END EC PRIVATE KEY-----
";
