//! Outgoing HTTP(S): the one place the service's HTTP clients are built (the Cloud API sender,
//! alert webhooks). TLS is rustls with the *ring* provider; the trusted roots are the system's
//! (the platform verifier) plus, when the operator gives one, a PEM bundle of their own
//! (`[tls] ca_file`): a private CA, or a test CA made by a test.
//!
//! PostgreSQL's TLS is sqlx's own (rustls, the system's roots), set in the database URL:
//! `?sslmode=require`, or `?sslmode=verify-full&sslrootcert=/path/ca.pem`.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Duration;

/// The extra roots of a PEM bundle: at least one certificate, or an error naming the file.
pub fn load_ca(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("tls.ca_file {}: cannot read it", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("tls.ca_file {}: not PEM certificates", path.display()))?;
    if certs.is_empty() {
        bail!("tls.ca_file {}: holds no certificate", path.display());
    }
    Ok(certs)
}

/// A client that gives up on a request after `timeout`, trusting the system's roots and those
/// of `ca_file`.
pub fn client(timeout: Duration, ca_file: Option<&Path>) -> Result<reqwest::Client> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)));
    if let Some(path) = ca_file {
        builder = builder.tls_certs_merge(load_ca(path)?);
    }
    builder.build().context("cannot build the HTTPS client")
}

/// rustls needs one process-wide crypto provider; the first call installs *ring*. A provider
/// installed before (by a test, or an earlier call) is kept: any of them will do.
fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}
