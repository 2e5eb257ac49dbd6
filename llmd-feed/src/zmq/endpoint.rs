//! ZMQ endpoint strings (`tcp://host:port`) as vLLM and llm-d write them.

use std::fmt;

/// A parsed `tcp://` endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TcpEndpoint {
    /// Host name or IP address; `*` (all interfaces) for a bind.
    pub host: String,
    /// Port (0 only for a bind: an ephemeral port).
    pub port: u16,
}

impl TcpEndpoint {
    /// Parses `tcp://host:port` (IPv6 hosts in brackets). Other transports
    /// (`ipc://`, `inproc://`) are refused with the reason.
    pub fn parse(s: &str) -> Result<TcpEndpoint, String> {
        let rest = s.strip_prefix("tcp://").ok_or_else(|| {
            if s.starts_with("ipc://") || s.starts_with("inproc://") {
                format!("'{s}': only tcp:// endpoints are supported (ipc and inproc are local to the engine's host)")
            } else {
                format!("'{s}': expected tcp://host:port")
            }
        })?;
        let (host, port) = match rest.strip_prefix('[') {
            Some(r) => r
                .split_once("]:")
                .ok_or_else(|| format!("'{s}': expected tcp://[ipv6]:port"))?,
            None => rest
                .rsplit_once(':')
                .ok_or_else(|| format!("'{s}': no port"))?,
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("'{s}': bad host"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| format!("'{s}': bad port '{port}'"))?;
        Ok(TcpEndpoint {
            host: host.to_string(),
            port,
        })
    }

    /// The same host with the port moved by `offset` (vLLM's data-parallel
    /// rule: rank r publishes on port + r; port 0 stays 0).
    pub fn offset(&self, offset: u16) -> Result<TcpEndpoint, String> {
        if self.port == 0 {
            return Ok(self.clone());
        }
        let port = self
            .port
            .checked_add(offset)
            .ok_or_else(|| format!("{self}: port + {offset} overflows"))?;
        Ok(TcpEndpoint {
            host: self.host.clone(),
            port,
        })
    }

    /// `host:port` for connecting or binding (`*` binds every interface).
    pub fn socket_addr(&self) -> String {
        let host = match self.host.as_str() {
            "*" => "0.0.0.0",
            h => h,
        };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for TcpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "tcp://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "tcp://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_offsets() {
        let e = TcpEndpoint::parse("tcp://10.0.0.7:5557").unwrap();
        assert_eq!(e.socket_addr(), "10.0.0.7:5557");
        assert_eq!(e.offset(2).unwrap().port, 5559);
        assert_eq!(
            TcpEndpoint::parse("tcp://*:5557").unwrap().socket_addr(),
            "0.0.0.0:5557"
        );
        assert_eq!(
            TcpEndpoint::parse("tcp://[::1]:9").unwrap().to_string(),
            "tcp://[::1]:9"
        );
        for bad in [
            "ipc:///tmp/x",
            "tcp://host",
            "tcp://:1",
            "tcp://h:99999",
            "h:1",
        ] {
            assert!(TcpEndpoint::parse(bad).is_err(), "{bad}");
        }
        assert!(TcpEndpoint::parse("tcp://h:65535")
            .unwrap()
            .offset(1)
            .is_err());
    }
}
