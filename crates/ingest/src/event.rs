//! Parsing one event record into typed, borrowed fields: no generic JSON tree.
//!
//! Keys match case-insensitively, so `eventId`, `eventID` and `eventid` are one field, and the
//! CloudTrail spellings map onto the ActionTrail columns:
//!
//! | CloudTrail          | column               |
//! |---------------------|----------------------|
//! | `eventID`           | `eventId`            |
//! | `awsRegion`         | `acsRegion`          |
//! | `sourceIPAddress`   | `sourceIpAddress`    |
//! | `requestID`         | `requestId`          |
//! | `resources`         | `referencedResources`|
//! | `sharedEventID`     | `sharedEventId`      |
//! | `readOnly`          | `eventRW` (`Read`/`Write`) |
//!
//! Scalars are accepted where strings are expected (`"eventVersion": 1` becomes `"1"`), objects
//! and arrays are not. A known key given twice is an error: two readers of such a record could
//! disagree about what it says. Unknown keys are kept in the `raw` column only.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A string value: borrowed from the input when it has no escapes.
pub type Str<'a> = Option<Cow<'a, str>>;

/// The fields of `userIdentity` that become columns.
#[derive(Debug, Default)]
pub struct UserIdentity<'a> {
    pub kind: Str<'a>,
    pub principal_id: Str<'a>,
    pub account_id: Str<'a>,
    pub access_key_id: Str<'a>,
    pub user_name: Str<'a>,
    pub arn: Str<'a>,
    pub invoked_by: Str<'a>,
    pub mfa_authenticated: Str<'a>,
    pub creation_date: Str<'a>,
    pub has_session_context: bool,
    pub has_attributes: bool,
    pub issuer: Option<SessionIssuer<'a>>,
}

/// `userIdentity.sessionContext.sessionIssuer`.
#[derive(Debug, Default)]
pub struct SessionIssuer<'a> {
    pub kind: Str<'a>,
    pub principal_id: Str<'a>,
    pub arn: Str<'a>,
    pub account_id: Str<'a>,
    pub user_name: Str<'a>,
}

/// One event, as delivered.
#[derive(Debug, Default)]
pub struct Event<'a> {
    pub event_id: Str<'a>,
    pub event_version: Str<'a>,
    pub event_source: Str<'a>,
    pub event_name: Str<'a>,
    pub event_type: Str<'a>,
    pub event_category: Str<'a>,
    pub event_rw: Str<'a>,
    pub read_only: Option<bool>,
    pub event_time: Str<'a>,
    /// Logstash's `@timestamp`, used only when asked to (see `IngestOptions`).
    pub at_timestamp: Str<'a>,
    pub acs_region: Str<'a>,
    pub service_name: Str<'a>,
    pub api_version: Str<'a>,
    pub request_id: Str<'a>,
    pub is_global: Option<bool>,
    pub source_ip_address: Str<'a>,
    pub user_agent: Str<'a>,
    pub user_identity: Option<UserIdentity<'a>>,
    pub error_code: Str<'a>,
    pub error_message: Str<'a>,
    pub request_parameters: Option<&'a RawValue>,
    pub response_elements: Option<&'a RawValue>,
    pub additional_event_data: Option<&'a RawValue>,
    pub referenced_resources: Option<&'a RawValue>,
    pub resource_type: Str<'a>,
    pub resource_name: Str<'a>,
    pub recipient_account_id: Str<'a>,
    pub vpc_id: Str<'a>,
    pub shared_event_id: Str<'a>,
    /// Keys spelled the CloudTrail way were seen (`awsRegion`, `eventID`, ...).
    pub cloudtrail_keys: bool,
    /// The record carries `insightDetails`: an insight event, not a management event.
    pub is_insight: bool,
    /// A top-level key that names a document's list of records or a digest file's contents
    /// (`Records`, `Items`, `digestStartTime`, in any case): whether the object is an event or
    /// a wrapper of them is the splitter's to decide (`records::Item::Candidate`).
    pub wrapper_key: bool,
}

/// Lower-case an ASCII key into a small stack buffer; `None` when it cannot be a known key.
fn lower<'b>(key: &str, buf: &'b mut [u8; 32]) -> Option<&'b str> {
    let bytes = key.as_bytes();
    if bytes.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(bytes) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(&buf[..bytes.len()]).ok()
}

macro_rules! keyed_enum {
    ($name:ident { $($variant:ident => [$($key:literal),+]),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        enum $name { $($variant),+, Other }

        impl $name {
            fn from_key(key: &str) -> Self {
                let mut buf = [0u8; 32];
                match lower(key, &mut buf) {
                    $($(Some($key))|+ => $name::$variant,)+
                    _ => $name::Other,
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a key")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::from_key(v))
                    }
                }
                d.deserialize_identifier(V)
            }
        }
    };
}

keyed_enum!(EventKey {
    EventId => ["eventid"],
    EventVersion => ["eventversion"],
    EventSource => ["eventsource"],
    EventName => ["eventname"],
    EventType => ["eventtype"],
    EventCategory => ["eventcategory"],
    EventRw => ["eventrw"],
    ReadOnly => ["readonly"],
    EventTime => ["eventtime"],
    AtTimestamp => ["@timestamp"],
    AcsRegion => ["acsregion"],
    AwsRegion => ["awsregion"],
    ServiceName => ["servicename"],
    ApiVersion => ["apiversion"],
    RequestId => ["requestid"],
    IsGlobal => ["isglobal"],
    SourceIp => ["sourceipaddress"],
    UserAgent => ["useragent"],
    UserIdentity => ["useridentity"],
    ErrorCode => ["errorcode"],
    ErrorMessage => ["errormessage"],
    RequestParameters => ["requestparameters"],
    ResponseElements => ["responseelements"],
    AdditionalEventData => ["additionaleventdata"],
    ReferencedResources => ["referencedresources"],
    Resources => ["resources"],
    ResourceType => ["resourcetype"],
    ResourceName => ["resourcename"],
    RecipientAccountId => ["recipientaccountid"],
    VpcId => ["vpcid", "vpcendpointid"],
    SharedEventId => ["sharedeventid"],
    InsightDetails => ["insightdetails"],
    Wrapper => ["records", "items", "digeststarttime"],
});

keyed_enum!(IdentityKey {
    Type => ["type"],
    PrincipalId => ["principalid"],
    AccountId => ["accountid"],
    AccessKeyId => ["accesskeyid"],
    UserName => ["username"],
    Arn => ["arn"],
    InvokedBy => ["invokedby"],
    SessionContext => ["sessioncontext"],
});

keyed_enum!(ContextKey {
    Attributes => ["attributes"],
    SessionIssuer => ["sessionissuer"],
});

keyed_enum!(AttrKey {
    MfaAuthenticated => ["mfaauthenticated"],
    CreationDate => ["creationdate"],
});

/// A string, or a scalar turned into its text; `null` is `None`.
struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Str<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Str<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(if v { "true" } else { "false" })))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// `true`/`false`, or the strings `"true"`/`"false"` in any case; `null` is `None`.
struct BoolSeed;

impl<'de> DeserializeSeed<'de> for BoolSeed {
    type Value = Option<bool>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Option<bool>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Some(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v.eq_ignore_ascii_case("true") {
                    Ok(Some(true))
                } else if v.eq_ignore_ascii_case("false") {
                    Ok(Some(false))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        d.deserialize_any(V)
    }
}

/// JSON text of any value; `null` is `None`.
struct JsonSeed;

impl<'de> DeserializeSeed<'de> for JsonSeed {
    type Value = Option<&'de RawValue>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        Ok((raw.get() != "null").then_some(raw))
    }
}

/// Track keys seen so far; a repeated known key is an error.
struct Seen(u64);

impl Seen {
    fn check<E: de::Error>(&mut self, bit: u8, name: &str) -> Result<(), E> {
        let mask = 1u64 << bit;
        if self.0 & mask != 0 {
            return Err(E::custom(format_args!("duplicate key `{name}`")));
        }
        self.0 |= mask;
        Ok(())
    }
}

fn field_err<E: de::Error>(field: &str) -> impl FnOnce(E) -> E + '_ {
    move |e| E::custom(format_args!("field `{field}`: {e}"))
}

macro_rules! set {
    ($map:ident, $seen:ident, $key:expr, $name:literal, $slot:expr, $seed:expr) => {{
        $seen.check::<A::Error>($key as u8, $name)?;
        $slot = $map.next_value_seed($seed).map_err(field_err($name))?;
    }};
}

impl<'de> Deserialize<'de> for Event<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Event<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                use EventKey as K;
                let mut e = Event::default();
                let mut seen = Seen(0);
                while let Some(key) = map.next_key::<EventKey>()? {
                    match key {
                        K::EventId => set!(map, seen, key, "eventId", e.event_id, StrSeed),
                        K::EventVersion => {
                            set!(map, seen, key, "eventVersion", e.event_version, StrSeed)
                        }
                        K::EventSource => {
                            set!(map, seen, key, "eventSource", e.event_source, StrSeed)
                        }
                        K::EventName => set!(map, seen, key, "eventName", e.event_name, StrSeed),
                        K::EventType => set!(map, seen, key, "eventType", e.event_type, StrSeed),
                        K::EventCategory => {
                            set!(map, seen, key, "eventCategory", e.event_category, StrSeed)
                        }
                        K::EventRw => set!(map, seen, key, "eventRW", e.event_rw, StrSeed),
                        K::ReadOnly => {
                            e.cloudtrail_keys = true;
                            set!(map, seen, key, "readOnly", e.read_only, BoolSeed)
                        }
                        K::EventTime => set!(map, seen, key, "eventTime", e.event_time, StrSeed),
                        K::AtTimestamp => {
                            set!(map, seen, key, "@timestamp", e.at_timestamp, StrSeed)
                        }
                        K::AcsRegion | K::AwsRegion => {
                            if key == K::AwsRegion {
                                e.cloudtrail_keys = true;
                            }
                            set!(map, seen, K::AcsRegion, "acsRegion", e.acs_region, StrSeed)
                        }
                        K::ServiceName => {
                            set!(map, seen, key, "serviceName", e.service_name, StrSeed)
                        }
                        K::ApiVersion => set!(map, seen, key, "apiVersion", e.api_version, StrSeed),
                        K::RequestId => set!(map, seen, key, "requestId", e.request_id, StrSeed),
                        K::IsGlobal => set!(map, seen, key, "isGlobal", e.is_global, BoolSeed),
                        K::SourceIp => set!(
                            map,
                            seen,
                            key,
                            "sourceIpAddress",
                            e.source_ip_address,
                            StrSeed
                        ),
                        K::UserAgent => set!(map, seen, key, "userAgent", e.user_agent, StrSeed),
                        K::UserIdentity => {
                            seen.check::<A::Error>(key as u8, "userIdentity")?;
                            e.user_identity = map
                                .next_value::<Option<UserIdentity<'de>>>()
                                .map_err(field_err("userIdentity"))?;
                        }
                        K::ErrorCode => set!(map, seen, key, "errorCode", e.error_code, StrSeed),
                        K::ErrorMessage => {
                            set!(map, seen, key, "errorMessage", e.error_message, StrSeed)
                        }
                        K::RequestParameters => set!(
                            map,
                            seen,
                            key,
                            "requestParameters",
                            e.request_parameters,
                            JsonSeed
                        ),
                        K::ResponseElements => set!(
                            map,
                            seen,
                            key,
                            "responseElements",
                            e.response_elements,
                            JsonSeed
                        ),
                        K::AdditionalEventData => set!(
                            map,
                            seen,
                            key,
                            "additionalEventData",
                            e.additional_event_data,
                            JsonSeed
                        ),
                        K::ReferencedResources | K::Resources => {
                            set!(
                                map,
                                seen,
                                K::ReferencedResources,
                                "referencedResources",
                                e.referenced_resources,
                                JsonSeed
                            )
                        }
                        K::ResourceType => {
                            set!(map, seen, key, "resourceType", e.resource_type, StrSeed)
                        }
                        K::ResourceName => {
                            set!(map, seen, key, "resourceName", e.resource_name, StrSeed)
                        }
                        K::RecipientAccountId => set!(
                            map,
                            seen,
                            key,
                            "recipientAccountId",
                            e.recipient_account_id,
                            StrSeed
                        ),
                        K::VpcId => set!(map, seen, key, "vpcId", e.vpc_id, StrSeed),
                        K::SharedEventId => {
                            set!(map, seen, key, "sharedEventId", e.shared_event_id, StrSeed)
                        }
                        K::InsightDetails => {
                            e.is_insight = true;
                            map.next_value::<IgnoredAny>()?;
                        }
                        K::Wrapper => {
                            e.wrapper_key = true;
                            map.next_value::<IgnoredAny>()?;
                        }
                        K::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(e)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for UserIdentity<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UserIdentity<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a userIdentity object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                use IdentityKey as K;
                let mut u = UserIdentity::default();
                let mut seen = Seen(0);
                while let Some(key) = map.next_key::<IdentityKey>()? {
                    match key {
                        K::Type => set!(map, seen, key, "type", u.kind, StrSeed),
                        K::PrincipalId => {
                            set!(map, seen, key, "principalId", u.principal_id, StrSeed)
                        }
                        K::AccountId => set!(map, seen, key, "accountId", u.account_id, StrSeed),
                        K::AccessKeyId => {
                            set!(map, seen, key, "accessKeyId", u.access_key_id, StrSeed)
                        }
                        K::UserName => set!(map, seen, key, "userName", u.user_name, StrSeed),
                        K::Arn => set!(map, seen, key, "arn", u.arn, StrSeed),
                        K::InvokedBy => set!(map, seen, key, "invokedBy", u.invoked_by, StrSeed),
                        K::SessionContext => {
                            seen.check::<A::Error>(key as u8, "sessionContext")?;
                            map.next_value_seed(ContextSeed(&mut u))
                                .map_err(field_err("sessionContext"))?;
                        }
                        K::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(u)
            }
        }
        d.deserialize_map(V)
    }
}

struct ContextSeed<'u, 'de>(&'u mut UserIdentity<'de>);

impl<'de> DeserializeSeed<'de> for ContextSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ContextSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sessionContext object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let u = self.0;
        u.has_session_context = true;
        let mut seen = Seen(0);
        while let Some(key) = map.next_key::<ContextKey>()? {
            match key {
                ContextKey::Attributes => {
                    seen.check::<A::Error>(key as u8, "attributes")?;
                    let attrs = map
                        .next_value::<Option<Attributes<'de>>>()
                        .map_err(field_err("attributes"))?;
                    if let Some(a) = attrs {
                        u.has_attributes = true;
                        u.mfa_authenticated = a.mfa_authenticated;
                        u.creation_date = a.creation_date;
                    }
                }
                ContextKey::SessionIssuer => {
                    seen.check::<A::Error>(key as u8, "sessionIssuer")?;
                    u.issuer = map
                        .next_value::<Option<SessionIssuer<'de>>>()
                        .map_err(field_err("sessionIssuer"))?;
                }
                ContextKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Attributes<'a> {
    mfa_authenticated: Str<'a>,
    creation_date: Str<'a>,
}

impl<'de> Deserialize<'de> for Attributes<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Attributes<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an attributes object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut a = Attributes {
                    mfa_authenticated: None,
                    creation_date: None,
                };
                let mut seen = Seen(0);
                while let Some(key) = map.next_key::<AttrKey>()? {
                    match key {
                        AttrKey::MfaAuthenticated => set!(
                            map,
                            seen,
                            key,
                            "mfaAuthenticated",
                            a.mfa_authenticated,
                            StrSeed
                        ),
                        AttrKey::CreationDate => {
                            set!(map, seen, key, "creationDate", a.creation_date, StrSeed)
                        }
                        AttrKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(a)
            }
        }
        d.deserialize_map(V)
    }
}

keyed_enum!(IssuerKey {
    Type => ["type"],
    PrincipalId => ["principalid"],
    Arn => ["arn"],
    AccountId => ["accountid"],
    UserName => ["username"],
});

impl<'de> Deserialize<'de> for SessionIssuer<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SessionIssuer<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sessionIssuer object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                use IssuerKey as K;
                let mut s = SessionIssuer::default();
                let mut seen = Seen(0);
                while let Some(key) = map.next_key::<IssuerKey>()? {
                    match key {
                        K::Type => set!(map, seen, key, "type", s.kind, StrSeed),
                        K::PrincipalId => {
                            set!(map, seen, key, "principalId", s.principal_id, StrSeed)
                        }
                        K::Arn => set!(map, seen, key, "arn", s.arn, StrSeed),
                        K::AccountId => set!(map, seen, key, "accountId", s.account_id, StrSeed),
                        K::UserName => set!(map, seen, key, "userName", s.user_name, StrSeed),
                        K::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(s)
            }
        }
        d.deserialize_map(V)
    }
}

/// Parse one record's JSON text.
pub fn parse_event(text: &str) -> Result<Event<'_>, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actiontrail_sample_fields() {
        let e = parse_event(
            r#"{"eventId":"108D","eventVersion":1,"userIdentity":{"sessionContext":{"attributes":{"mfaAuthenticated":false,"creationDate":"2020-12-17T06:55:12Z"}},"accountId":"1103","type":"root-account","userName":"root"},"requestParameters":{"a":{"b":[1,2]}},"eventTime":"2020-12-17T06:55:12Z","isGlobal":false,"acsRegion":"cn-hangzhou","eventName":"CreateMpaasApp"}"#,
        )
        .unwrap();
        assert_eq!(e.event_version.as_deref(), Some("1"));
        let u = e.user_identity.unwrap();
        assert_eq!(u.mfa_authenticated.as_deref(), Some("false"));
        assert_eq!(u.user_name.as_deref(), Some("root"));
        assert_eq!(e.request_parameters.unwrap().get(), r#"{"a":{"b":[1,2]}}"#);
        assert_eq!(e.is_global, Some(false));
        assert!(!e.cloudtrail_keys);
    }

    #[test]
    fn cloudtrail_spellings_and_case() {
        let e = parse_event(
            r#"{"eventID":"x","awsRegion":"us-east-1","sourceIPAddress":"1.2.3.4","readOnly":true,"resources":[{"ARN":"a"}],"EVENTNAME":"ListBuckets","requestParameters":null}"#,
        )
        .unwrap();
        assert_eq!(e.event_id.as_deref(), Some("x"));
        assert_eq!(e.acs_region.as_deref(), Some("us-east-1"));
        assert_eq!(e.source_ip_address.as_deref(), Some("1.2.3.4"));
        assert_eq!(e.read_only, Some(true));
        assert_eq!(e.event_name.as_deref(), Some("ListBuckets"));
        assert!(e.request_parameters.is_none());
        assert!(e.referenced_resources.is_some());
        assert!(e.cloudtrail_keys);
    }

    #[test]
    fn duplicate_and_wrong_types_are_errors() {
        let err = parse_event(r#"{"eventName":"a","eventname":"b"}"#).unwrap_err();
        assert!(
            err.to_string().contains("duplicate key `eventName`"),
            "{err}"
        );
        let err = parse_event(r#"{"eventName":{"x":1}}"#).unwrap_err();
        assert!(err.to_string().contains("field `eventName`"), "{err}");
        let err = parse_event(r#"{"awsRegion":"a","acsRegion":"b"}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate"), "{err}");
        assert!(parse_event(r#"[1,2]"#).is_err());
        assert!(parse_event(r#"{"isGlobal":"maybe"}"#).is_err());
    }
}
