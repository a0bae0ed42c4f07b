//! TLS for `SSL_GET`, with rustls and the ring provider.
//!
//! keepalived's `SSL_GET` does not verify the real server's certificate (its checker
//! only wants to know the service answers), and neither does this: [`NoCertVerifier`]
//! accepts any certificate chain for any name. It still checks the handshake
//! signatures with the provider's algorithms, so the peer must hold the key of the
//! certificate it sent. SNI is sent only when the checker has `enable_sni` and a
//! virtual host; otherwise the server name is the address, which rustls never sends.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use health::FailureKind;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A verifier that accepts every certificate (keepalived's `SSL_GET` behaviour) but
/// checks handshake signatures.
#[derive(Debug)]
pub struct NoCertVerifier(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The shared client configuration (built once).
pub fn client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(NoCertVerifier(provider.clone()));
            let builder = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap_or_else(|_| {
                    // The ring provider supports the default versions; this branch only
                    // exists so that no panic path is left.
                    ClientConfig::builder_with_protocol_versions(rustls::DEFAULT_VERSIONS)
                });
            Arc::new(
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// Runs the TLS handshake on `stream`, with `sni` as the server name if given.
pub async fn connect(
    stream: TcpStream,
    sni: Option<&str>,
    addr: IpAddr,
) -> Result<TlsStream<TcpStream>, FailureKind> {
    let name = match sni.map(|s| ServerName::try_from(s.to_owned())) {
        Some(Ok(n)) => n,
        _ => ServerName::IpAddress(addr.into()),
    };
    TlsConnector::from(client_config())
        .connect(name, stream)
        .await
        .map_err(|_| FailureKind::Connect)
}
