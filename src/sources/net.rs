//! Outbound HTTP that a hostile DNS answer or redirect cannot turn against the internal
//! network: every address a source connects to is checked (the resolver drops forbidden
//! answers, IP literals are checked before the request and at each redirect), redirects are
//! limited and re-checked, no proxy from the environment is used (it would resolve names
//! where we cannot check them), and bodies stream to disk under a size limit.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

/// Why an address may not be contacted, or `None` when it may. Cloud metadata endpoints are
/// refused even for sources that allow private addresses.
pub fn forbidden(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if o == [169, 254, 169, 254] || o == [100, 100, 100, 200] {
                return Some("a cloud metadata address");
            }
            if allow_private {
                return None;
            }
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() {
                Some("not a unicast address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if s == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] {
                return Some("a cloud metadata address");
            }
            if allow_private {
                return None;
            }
            if v6.is_loopback() {
                Some("a loopback address")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("a private address")
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("not a unicast address")
            } else {
                None
            }
        }
    }
}

/// Checks a URL before it is requested: scheme, and the host when it is an IP literal.
pub fn check_url(url: &url::Url, allow_private: bool) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("refused {url}: only http and https are fetched"));
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(format!("refused {url}: no host")),
    };
    match forbidden(ip, allow_private) {
        Some(why) => Err(format!("refused {url}: {ip} is {why}")),
        None => Ok(()),
    }
}

/// Resolves names and drops the addresses the source may not contact.
struct CheckedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| forbidden(a.ip(), allow_private).is_none())
                .collect();
            if allowed.is_empty() {
                let why = all
                    .first()
                    .and_then(|a| forbidden(a.ip(), allow_private).map(|w| (a.ip(), w)));
                let message = match why {
                    Some((ip, why)) => format!("refused {host}: it resolves to {ip}, {why}"),
                    None => format!("{host} has no address"),
                };
                return Err(message.into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// A client for one source: checked resolver, checked and limited redirects, no proxy.
pub fn client(
    allow_private: bool,
    connect_timeout: Duration,
    max_redirects: usize,
) -> Result<reqwest::Client, String> {
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max_redirects {
            return attempt.error(format!("more than {max_redirects} redirects"));
        }
        match check_url(attempt.url(), allow_private) {
            Ok(()) => attempt.follow(),
            Err(why) => attempt.error(format!("redirect {why}")),
        }
    });
    reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(CheckedResolver { allow_private }))
        .redirect(policy)
        .connect_timeout(connect_timeout)
        .user_agent(concat!("tracemap/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// How a download ended, short of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    NotFound,
    Timeout,
    TooLarge(u64),
    /// Refused before connecting (a forbidden address), or the server failed.
    Error(String),
}

/// Streams `url` into a new file at `path`, at most `max_size` bytes.
pub async fn download(
    client: &reqwest::Client,
    url: url::Url,
    headers: &[(String, String)],
    allow_private: bool,
    max_size: u64,
    path: &Path,
) -> Result<u64, Miss> {
    check_url(&url, allow_private).map_err(Miss::Error)?;
    let mut request = client.get(url);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let response = request.send().await.map_err(request_error)?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
        return Err(Miss::NotFound);
    }
    if !status.is_success() {
        return Err(Miss::Error(format!("HTTP {status}")));
    }
    if response.content_length().is_some_and(|n| n > max_size) {
        return Err(Miss::TooLarge(max_size));
    }
    write_stream(response.bytes_stream(), max_size, path).await
}

/// Writes a byte stream to `path`, failing past `max_size` bytes.
pub async fn write_stream<S, E>(mut stream: S, max_size: u64, path: &Path) -> Result<u64, Miss>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let io = |e: std::io::Error| Miss::Error(format!("writing the download: {e}"));
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            let text = e.to_string();
            if text.contains("timed out") {
                Miss::Timeout
            } else {
                Miss::Error(format!("reading the body: {text}"))
            }
        })?;
        written += chunk.len() as u64;
        if written > max_size {
            return Err(Miss::TooLarge(max_size));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    Ok(written)
}

fn request_error(e: reqwest::Error) -> Miss {
    if e.is_timeout() {
        return Miss::Timeout;
    }
    // The whole chain: "error sending request" alone says nothing; the refusal or the
    // connection error is in the sources.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    Miss::Error(text)
}
