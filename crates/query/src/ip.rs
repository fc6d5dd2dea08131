//! IP address functions for SQL.
//!
//! Source addresses in audit events are often not addresses at all (`Internal`, a service host
//! name such as `ecs.aliyuncs.com`), so every function returns NULL for text that is not an IP
//! address instead of failing the query; `is_ip` tells the two apart. IPv4-mapped IPv6
//! addresses (`::ffff:1.2.3.4`) are treated as the IPv4 address.
//!
//! | example (see [`EXAMPLES`], run as a test) | result |
//! |---|---|
//! | `is_ip('203.0.113.7')` | `true` |
//! | `is_ip('ecs.aliyuncs.com')` | `false` |
//! | `is_private_ip('10.1.2.3')` | `true` |
//! | `is_private_ip('203.0.113.7')` | `false` |
//! | `is_private_ip('Internal')` | NULL |
//! | `ip_in_cidr('192.168.1.20', '192.168.0.0/16')` | `true` |
//! | `ip_in_cidr('2001:db8::1', '2001:db8::/32')` | `true` |
//! | `ip_network('203.0.113.77', 24)` | `203.0.113.0/24` |
//! | `ip_network('2001:db8:1:2::9', 64)` | `2001:db8:1:2::/64` |
//!
//! `is_private_ip` is true for addresses that cannot be a public source: RFC 1918, loopback,
//! link-local, carrier-grade NAT (100.64.0.0/10), unspecified, IPv6 unique-local (fc00::/7),
//! IPv6 link-local and loopback.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, LargeStringArray, StringArray, StringBuilder,
    StringViewArray,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use ipnet::IpNet;

/// `(SQL, expected value as text)` for each documented example.
pub const EXAMPLES: &[(&str, &str)] = &[
    ("is_ip('203.0.113.7')", "true"),
    ("is_ip('ecs.aliyuncs.com')", "false"),
    ("is_ip('Internal')", "false"),
    ("is_private_ip('10.1.2.3')", "true"),
    ("is_private_ip('100.64.0.1')", "true"),
    ("is_private_ip('fd00::1')", "true"),
    ("is_private_ip('203.0.113.7')", "false"),
    ("is_private_ip('Internal')", "NULL"),
    ("ip_in_cidr('192.168.1.20', '192.168.0.0/16')", "true"),
    ("ip_in_cidr('192.169.1.20', '192.168.0.0/16')", "false"),
    (
        "ip_in_cidr('::ffff:192.168.1.20', '192.168.0.0/16')",
        "true",
    ),
    ("ip_in_cidr('2001:db8::1', '2001:db8::/32')", "true"),
    ("ip_in_cidr('203.0.113.7', '203.0.113.7')", "true"),
    ("ip_in_cidr('Internal', '10.0.0.0/8')", "NULL"),
    ("ip_network('203.0.113.77', 24)", "203.0.113.0/24"),
    ("ip_network('2001:db8:1:2::9', 64)", "2001:db8:1:2::/64"),
    ("ip_network('203.0.113.77', 40)", "NULL"),
];

/// The IP functions: name and number of arguments.
const FUNCTIONS: [(&str, usize); 4] = [
    ("is_ip", 1),
    ("is_private_ip", 1),
    ("ip_in_cidr", 2),
    ("ip_network", 2),
];

/// Register the IP functions with a session.
pub fn register(ctx: &SessionContext) {
    for (name, args) in FUNCTIONS {
        ctx.register_udf(ScalarUDF::from(IpFn::new(name, args)));
    }
}

/// One IP function by name (`ip_in_cidr`, ...), for building expressions without a session.
pub fn function(name: &str) -> Option<ScalarUDF> {
    FUNCTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, a)| ScalarUDF::from(IpFn::new(n, *a)))
}

/// Parse an address; IPv4-mapped IPv6 becomes IPv4.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    })
}

/// Parse a network (`10.0.0.0/8`) or a single address (as a /32 or /128).
pub fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n.trunc());
    }
    parse_ip(s).map(IpNet::from)
}

/// True for addresses that cannot be a public source.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || in_v4(v4, Ipv4Addr::new(100, 64, 0, 0), 10)
        }
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (seg0 & 0xfe00) == 0xfc00
                || (seg0 & 0xffc0) == 0xfe80
        }
    }
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    (u32::from(ip) & mask) == (u32::from(net) & mask)
}

/// The network of `ip` with a prefix of `len` bits, e.g. `203.0.113.0/24`.
pub fn network(ip: IpAddr, len: u8) -> Option<IpNet> {
    IpNet::new(ip, len).ok().map(|n| n.trunc())
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IpFn {
    name: &'static str,
    args: usize,
    signature: Signature,
}

impl IpFn {
    fn new(name: &'static str, args: usize) -> Self {
        IpFn {
            name,
            args,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

enum Strs<'a> {
    View(&'a StringViewArray),
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
}

impl Strs<'_> {
    fn of(a: &ArrayRef) -> Result<Strs<'_>> {
        let any = a.as_any();
        if let Some(v) = any.downcast_ref::<StringViewArray>() {
            Ok(Strs::View(v))
        } else if let Some(v) = any.downcast_ref::<StringArray>() {
            Ok(Strs::Utf8(v))
        } else if let Some(v) = any.downcast_ref::<LargeStringArray>() {
            Ok(Strs::Large(v))
        } else {
            Err(DataFusionError::Execution(format!(
                "expected text, got {}",
                a.data_type()
            )))
        }
    }

    fn get(&self, i: usize) -> Option<&str> {
        match self {
            Strs::View(a) => a.is_valid(i).then(|| a.value(i)),
            Strs::Utf8(a) => a.is_valid(i).then(|| a.value(i)),
            Strs::Large(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null
    )
}

impl ScalarUDFImpl for IpFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != self.args {
            return Err(DataFusionError::Plan(format!(
                "{} takes {} argument(s), got {}",
                self.name,
                self.args,
                arg_types.len()
            )));
        }
        let text = |t: &DataType| -> Result<DataType> {
            if is_text(t) {
                Ok(if *t == DataType::Null {
                    DataType::Utf8
                } else {
                    t.clone()
                })
            } else {
                Err(DataFusionError::Plan(format!(
                    "{} expects text, got {t}",
                    self.name
                )))
            }
        };
        let mut out = vec![text(&arg_types[0])?];
        if self.args == 2 {
            out.push(if self.name == "ip_network" {
                if arg_types[1].is_integer() || arg_types[1] == DataType::Null {
                    DataType::Int64
                } else {
                    return Err(DataFusionError::Plan(format!(
                        "ip_network expects a prefix length (an integer), got {}",
                        arg_types[1]
                    )));
                }
            } else {
                text(&arg_types[1])?
            });
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(if self.name == "ip_network" {
            DataType::Utf8
        } else {
            DataType::Boolean
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let n = args.number_rows;
        let first = Strs::of(&arrays[0])?;
        let out: ArrayRef = match self.name {
            "is_ip" => Arc::new(
                (0..n)
                    .map(|i| first.get(i).map(|s| parse_ip(s).is_some()))
                    .collect::<BooleanArray>(),
            ),
            "is_private_ip" => Arc::new(
                (0..n)
                    .map(|i| first.get(i).and_then(parse_ip).map(is_private))
                    .collect::<BooleanArray>(),
            ),
            "ip_in_cidr" => {
                let nets = Strs::of(&arrays[1])?;
                // A constant CIDR is parsed once.
                let constant = matches!(args.args[1], ColumnarValue::Scalar(_));
                let fixed = if constant {
                    nets.get(0).and_then(parse_net)
                } else {
                    None
                };
                Arc::new(
                    (0..n)
                        .map(|i| {
                            let ip = first.get(i).and_then(parse_ip)?;
                            let net = if constant {
                                fixed?
                            } else {
                                nets.get(i).and_then(parse_net)?
                            };
                            Some(net.contains(&ip))
                        })
                        .collect::<BooleanArray>(),
                )
            }
            _ => {
                let lens = arrays[1]
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .ok_or_else(|| {
                        DataFusionError::Execution(
                            "ip_network: prefix length must be an integer".into(),
                        )
                    })?;
                let mut b = StringBuilder::with_capacity(n, n * 16);
                for i in 0..n {
                    let net = first.get(i).and_then(parse_ip).and_then(|ip| {
                        let len = lens.is_valid(i).then(|| lens.value(i))?;
                        network(ip, u8::try_from(len).ok()?)
                    });
                    match net {
                        Some(net) => b.append_value(net.to_string()),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges() {
        for (ip, want) in [
            ("10.0.0.1", true),
            ("172.16.5.4", true),
            ("172.32.0.1", false),
            ("192.168.0.1", true),
            ("100.64.0.1", true),
            ("100.128.0.1", false),
            ("127.0.0.1", true),
            ("169.254.1.1", true),
            ("8.8.8.8", false),
            ("::1", true),
            ("fe80::1", true),
            ("fd12::1", true),
            ("2001:db8::1", false),
            ("::ffff:10.0.0.1", true),
        ] {
            assert_eq!(parse_ip(ip).map(is_private), Some(want), "{ip}");
        }
        assert_eq!(parse_ip("Internal"), None);
        assert_eq!(parse_ip("ecs.aliyuncs.com"), None);
    }
}
