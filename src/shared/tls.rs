//! TLS to the shared store's server, as libpq's `sslmode` says:
//!
//! - `disable`: plain;
//! - `prefer` (the default) and `allow`: encrypted when the server offers
//!   TLS, plain when it does not;
//! - `require`: encrypted, or no connection;
//! - `verify-ca`: encrypted, and the server's certificate must chain to a
//!   root certificate the user trusts;
//! - `verify-full`: that, and the certificate must name the host.
//!
//! The root certificate comes from `sslrootcert=PATH` in the URL, else
//! `$PGSSLROOTCERT`, else `~/.postgresql/root.crt`. Given one, `prefer`
//! and `require` check the chain too (libpq's `require` does when
//! `root.crt` exists); without one they encrypt without checking who the
//! server is, as libpq does. The postgres client reads only `disable`,
//! `prefer` and `require` and no `sslrootcert`, so these are taken out of
//! the URL here and the client is given what they mean.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use postgres::config::SslMode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How to speak to the server.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The URL's TLS settings.
#[derive(Debug)]
pub struct TlsSettings {
    mode: Mode,
    /// `sslrootcert=PATH` from the URL.
    root: Option<PathBuf>,
}

/// Takes `sslmode` and `sslrootcert` out of the URL's parameters; returns
/// the URL the postgres client is given and the TLS settings.
pub fn split_url(url: &str, shown: &str) -> Result<(String, TlsSettings)> {
    let mut settings = TlsSettings {
        mode: Mode::Prefer,
        root: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), settings));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => {
                settings.mode = match value {
                    "disable" => Mode::Disable,
                    "allow" | "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => bail!("{shown}: sslmode={other} is not a mode; use disable, prefer, require, verify-ca or verify-full"),
                }
            }
            Some(("sslrootcert", value)) => settings.root = Some(PathBuf::from(percent_decoded(value))),
            _ => kept.push(pair),
        }
    }
    let url = match kept.is_empty() {
        true => base.to_string(),
        false => format!("{base}?{}", kept.join("&")),
    };
    Ok((url, settings))
}

/// `%XX` escapes decoded (a path in a URL parameter).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TlsSettings {
    /// What the postgres client is told: whether TLS is off, tried, or
    /// required.
    pub fn client_mode(&self) -> SslMode {
        match self.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }

    /// The TLS connector, or none for `disable`.
    pub fn connector(&self, shown: &str) -> Result<Option<MakeRustlsConnect>> {
        if self.mode == Mode::Disable {
            return Ok(None);
        }
        // ring, not aws-lc-rs: it builds with the C compiler alone. Its
        // provider lacks post-quantum key exchange (hence the deprecation
        // note), which PostgreSQL servers do not offer yet either.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow!("setting up TLS for {shown}: {e}"))?;
        let chain = match (self.root_certificate(), self.mode) {
            (None, Mode::VerifyCa | Mode::VerifyFull) => bail!(
                "{shown} asks to check the server's certificate, and no root certificate was given; name the CA's certificate with sslrootcert=PATH in the URL or $PGSSLROOTCERT (or put it in ~/.postgresql/root.crt)"
            ),
            (None, _) => None,
            (Some(path), _) => {
                let roots = read_roots(&path, shown)?;
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| anyhow!("{shown}: the root certificate in {} cannot check servers: {e}", path.display()))?;
                Some(webpki)
            }
        };
        let verifier = Arc::new(ServerCheck {
            chain,
            check_name: self.mode == Mode::VerifyFull,
            provider,
        });
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Some(MakeRustlsConnect::new(config)))
    }

    /// The root certificate's file: the URL's, `$PGSSLROOTCERT`, or
    /// `~/.postgresql/root.crt` when it exists.
    fn root_certificate(&self) -> Option<PathBuf> {
        if let Some(path) = &self.root {
            return Some(path.clone());
        }
        if let Some(path) = std::env::var_os("PGSSLROOTCERT") {
            return Some(PathBuf::from(path));
        }
        let home = std::env::var_os("HOME")?;
        let default = PathBuf::from(home).join(".postgresql/root.crt");
        default.exists().then_some(default)
    }
}

fn read_roots(path: &std::path::Path, shown: &str) -> Result<RootCertStore> {
    let unreadable = |e: &dyn std::fmt::Display| {
        anyhow!(
            "{shown}: cannot read the root certificate {} ({e}); give a PEM file of the CA that signed the server's certificate",
            path.display()
        )
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
        roots
            .add(cert.map_err(|e| unreadable(&e))?)
            .map_err(|e| unreadable(&e))?;
    }
    if roots.is_empty() {
        return Err(unreadable(&"it holds no certificate"));
    }
    Ok(roots)
}

/// What is checked of the server: with a root certificate, that its
/// certificate chains to it (and with `check_name`, that it names the
/// host); without one, nothing (`prefer` and `require` with no root
/// certificate, as libpq does). The handshake's signatures are checked
/// always, so the session key is the certificate holder's.
#[derive(Debug)]
struct ServerCheck {
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_leave_the_url_and_others_stay() {
        let (url, tls) = split_url(
            "postgres://a@h/db?connect_timeout=5&sslmode=verify-full&sslrootcert=/ca%20dir/root.crt",
            "shown",
        )
        .unwrap();
        assert_eq!(url, "postgres://a@h/db?connect_timeout=5");
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert_eq!(tls.root, Some(PathBuf::from("/ca dir/root.crt")));
        assert_eq!(tls.client_mode(), SslMode::Require);
        let (url, tls) = split_url("postgres://a@h/db", "shown").unwrap();
        assert_eq!(
            (url.as_str(), tls.mode),
            ("postgres://a@h/db", Mode::Prefer)
        );
        assert!(split_url("postgres://a@h/db?sslmode=always", "shown").is_err());
    }
}
