//! A SoftHSM2 token in a temporary directory (its own `SOFTHSM2_CONF`), holding the fixtures' RSA,
//! P-256 and P-384 keys with their certificates: a real PKCS#11 module for the token tests and the
//! handshake benchmark. Needs the Debian packages softhsm2 (module, softhsm2-util) and opensc
//! (pkcs11-tool); `.ci/run` installs both.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const TOKEN: &str = "mcp";
pub const PIN: &str = "1234";
const SO_PIN: &str = "5678";

/// Where Debian (and Ubuntu, Fedora) put the SoftHSM2 module.
const MODULE_CANDIDATES: [&str; 4] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// The keys imported into every token: (label, id, key fixture, certificate fixture).
pub const KEYS: [(&str, &str, &str, &str); 3] = [
    ("client-rsa", "01", "client-rsa.key", "client-rsa.crt"),
    ("client-ec", "02", "client-ec.pkcs8.key", "client-ec.crt"),
    (
        "client-ec384",
        "03",
        "client-ec384.pkcs8.key",
        "client-ec384.crt",
    ),
];

pub struct SoftHsm {
    pub dir: PathBuf,
    pub conf: PathBuf,
    pub module: PathBuf,
    tokens: PathBuf,
}

pub fn module_path() -> PathBuf {
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "SoftHSM2 is not installed (looked for {MODULE_CANDIDATES:?}): \
                 apt-get install softhsm2 opensc"
            )
        })
}

impl SoftHsm {
    /// A fresh token `mcp` (user PIN 1234) with the [`KEYS`].
    pub fn new(name: &str) -> SoftHsm {
        let hsm = SoftHsm::empty(name);
        for (label, id, key, cert) in KEYS {
            hsm.import(label, id, key, cert);
        }
        hsm
    }

    /// A key and its certificate (fixture names) under one label and id.
    pub fn import(&self, label: &str, id: &str, key: &str, cert: &str) {
        self.import_key(&super::fixture(key), label, id);
        self.import_cert(&super::fixture(cert), label, id);
    }

    /// A fresh token `mcp` (user PIN 1234) with nothing on it.
    pub fn empty(name: &str) -> SoftHsm {
        let dir = std::env::temp_dir().join(format!("mcp-softhsm-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let hsm = SoftHsm {
            dir,
            conf,
            module: module_path(),
            tokens,
        };
        hsm.tool(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                TOKEN,
                "--pin",
                PIN,
                "--so-pin",
                SO_PIN,
            ],
        );
        hsm
    }

    /// `softhsm2-util --import` of a PEM private key (it also creates the public-key object).
    pub fn import_key(&self, pem: &Path, label: &str, id: &str) {
        self.tool(
            "softhsm2-util",
            &[
                "--import",
                &pem.display().to_string(),
                "--token",
                TOKEN,
                "--label",
                label,
                "--id",
                id,
                "--pin",
                PIN,
            ],
        );
    }

    /// A certificate object (PEM fixture written as DER) with this label and id.
    pub fn import_cert(&self, pem: &Path, label: &str, id: &str) {
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_file(pem).unwrap();
        let file = self.dir.join(format!("{label}-{id}.der"));
        std::fs::write(&file, der.as_ref()).unwrap();
        self.pkcs11_tool(&[
            "--write-object",
            &file.display().to_string(),
            "--type",
            "cert",
            "--label",
            label,
            "--id",
            id,
        ]);
    }

    /// pkcs11-tool logged in to the token.
    pub fn pkcs11_tool(&self, args: &[&str]) {
        let mut all = vec![
            "--module".to_string(),
            self.module.display().to_string(),
            "--token-label".to_string(),
            TOKEN.to_string(),
            "--login".to_string(),
            "--pin".to_string(),
            PIN.to_string(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        self.tool("pkcs11-tool", &all);
    }

    fn tool(&self, program: &str, args: &[&str]) {
        let out = Command::new(program)
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {program} ({e}): apt-get install softhsm2 opensc")
            });
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The environment a process needs to see this token.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("SOFTHSM2_CONF", self.conf.display().to_string())]
    }

    /// `pkcs11:token=mcp;object=LABEL`.
    pub fn uri(&self, object: &str) -> String {
        format!("pkcs11:token={TOKEN};object={object}")
    }

    /// The flags for a token key, with the module and the PIN.
    pub fn key_flags(&self, object: &str) -> Vec<String> {
        vec![
            "--tls-key".into(),
            self.uri(object),
            "--tls-pkcs11-module".into(),
            self.module.display().to_string(),
            "--tls-passphrase".into(),
            PIN.into(),
        ]
    }

    /// "Pulls the token out": its directory disappears from the module's token directory.
    pub fn remove_token(&self) {
        std::fs::rename(&self.tokens, self.dir.join("tokens.removed")).unwrap();
        std::fs::create_dir(&self.tokens).unwrap();
    }

    /// Puts it back.
    pub fn reinsert_token(&self) {
        std::fs::remove_dir(&self.tokens).unwrap();
        std::fs::rename(self.dir.join("tokens.removed"), &self.tokens).unwrap();
    }

    /// Sets CKF_USER_PIN_LOCKED in the token's stored flags: the module then reports the user
    /// PIN locked, as a card does after too many wrong tries (SoftHSM itself never locks it).
    pub fn lock_user_pin(&self) {
        const CKF_USER_PIN_LOCKED: u64 = 0x0004_0000;
        // token.object: (type u64, kind u64, value) records, big-endian; CKA_OS_TOKENFLAGS is
        // vendor attribute 0x8000534b holding an unsigned long (kind 2).
        let token_dir = std::fs::read_dir(&self.tokens)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.join("token.object").exists())
            .expect("a token directory");
        let file = token_dir.join("token.object");
        let mut bytes = std::fs::read(&file).unwrap();
        let marker = [0, 0, 0, 0, 0x80, 0, 0x53, 0x4b, 0, 0, 0, 0, 0, 0, 0, 2];
        let at = bytes
            .windows(marker.len())
            .position(|w| w == marker)
            .expect("CKA_OS_TOKENFLAGS in token.object")
            + marker.len();
        let mut value = [0u8; 8];
        value.copy_from_slice(&bytes[at..at + 8]);
        let flags = u64::from_be_bytes(value) | CKF_USER_PIN_LOCKED;
        bytes[at..at + 8].copy_from_slice(&flags.to_be_bytes());
        std::fs::write(&file, bytes).unwrap();
    }
}

impl Drop for SoftHsm {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
