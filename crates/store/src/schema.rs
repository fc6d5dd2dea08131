//! The canonical event schema: one Arrow schema for ActionTrail and CloudTrail events.
//!
//! Column names are the ActionTrail field names users know from the event JSON
//! (`eventName`, `userIdentity.userName`, `sourceIpAddress`). CloudTrail records map into the
//! same columns (see the ingest crate's `dialect` module for the mapping). The four free-form
//! JSON members stay JSON text; the original record is kept whole in `raw`.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

pub const EVENT_ID: &str = "eventId";
pub const EVENT_VERSION: &str = "eventVersion";
pub const EVENT_SOURCE: &str = "eventSource";
pub const EVENT_NAME: &str = "eventName";
pub const EVENT_TYPE: &str = "eventType";
pub const EVENT_CATEGORY: &str = "eventCategory";
pub const EVENT_RW: &str = "eventRW";
pub const EVENT_TIME: &str = "eventTime";
pub const ACS_REGION: &str = "acsRegion";
pub const SERVICE_NAME: &str = "serviceName";
pub const API_VERSION: &str = "apiVersion";
pub const REQUEST_ID: &str = "requestId";
pub const IS_GLOBAL: &str = "isGlobal";
pub const SOURCE_IP_ADDRESS: &str = "sourceIpAddress";
pub const USER_AGENT: &str = "userAgent";
pub const USER_IDENTITY: &str = "userIdentity";
pub const ERROR_CODE: &str = "errorCode";
pub const ERROR_MESSAGE: &str = "errorMessage";
pub const REQUEST_PARAMETERS: &str = "requestParameters";
pub const RESPONSE_ELEMENTS: &str = "responseElements";
pub const ADDITIONAL_EVENT_DATA: &str = "additionalEventData";
pub const REFERENCED_RESOURCES: &str = "referencedResources";
pub const RESOURCE_TYPE: &str = "resourceType";
pub const RESOURCE_NAME: &str = "resourceName";
pub const RECIPIENT_ACCOUNT_ID: &str = "recipientAccountId";
pub const VPC_ID: &str = "vpcId";
pub const SHARED_EVENT_ID: &str = "sharedEventId";
/// `actiontrail` or `cloudtrail`: which vendor's record this row came from.
pub const DIALECT: &str = "dialect";
/// The original record, byte for byte as delivered (JSON text).
pub const RAW: &str = "raw";

/// Partition column: the event's region (`acsRegion`), percent-encoded in the path.
pub const PART_REGION: &str = "region";
/// Partition column: the UTC date of `eventTime`.
pub const PART_DATE: &str = "eventDate";

/// Leaf names of the `userIdentity` struct, in order.
pub const USER_IDENTITY_FIELDS: [&str; 7] = [
    "type",
    "principalId",
    "accountId",
    "accessKeyId",
    "userName",
    "arn",
    "invokedBy",
];
/// Leaf names of `userIdentity.sessionContext.attributes`.
pub const ATTRIBUTES_FIELDS: [&str; 2] = ["mfaAuthenticated", "creationDate"];
/// Leaf names of `userIdentity.sessionContext.sessionIssuer`.
pub const SESSION_ISSUER_FIELDS: [&str; 5] =
    ["type", "principalId", "arn", "accountId", "userName"];

/// Top-level string columns in schema order, before `eventTime` and after it.
pub const STRINGS_BEFORE_TIME: [&str; 7] = [
    EVENT_ID,
    EVENT_VERSION,
    EVENT_SOURCE,
    EVENT_NAME,
    EVENT_TYPE,
    EVENT_CATEGORY,
    EVENT_RW,
];
pub const STRINGS_AFTER_TIME: [&str; 4] = [ACS_REGION, SERVICE_NAME, API_VERSION, REQUEST_ID];
pub const STRINGS_AFTER_GLOBAL: [&str; 2] = [SOURCE_IP_ADDRESS, USER_AGENT];
pub const STRINGS_AFTER_IDENTITY: [&str; 13] = [
    ERROR_CODE,
    ERROR_MESSAGE,
    REQUEST_PARAMETERS,
    RESPONSE_ELEMENTS,
    ADDITIONAL_EVENT_DATA,
    REFERENCED_RESOURCES,
    RESOURCE_TYPE,
    RESOURCE_NAME,
    RECIPIENT_ACCOUNT_ID,
    VPC_ID,
    SHARED_EVENT_ID,
    DIALECT,
    RAW,
];

/// Columns that hold JSON text rather than plain strings.
pub const JSON_COLUMNS: [&str; 4] = [
    REQUEST_PARAMETERS,
    RESPONSE_ELEMENTS,
    ADDITIONAL_EVENT_DATA,
    REFERENCED_RESOURCES,
];

/// Parquet column paths that carry bloom filters (point lookups).
pub const BLOOM_COLUMNS: [&str; 4] = [
    EVENT_ID,
    SOURCE_IP_ADDRESS,
    "userIdentity.userName",
    "userIdentity.accessKeyId",
];

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn utf8_struct(names: &[&str]) -> Fields {
    names.iter().map(|n| utf8(n)).collect()
}

/// Fields of `userIdentity.sessionContext.attributes`.
pub fn attributes_fields() -> Fields {
    utf8_struct(&ATTRIBUTES_FIELDS)
}

/// Fields of `userIdentity.sessionContext.sessionIssuer`.
pub fn session_issuer_fields() -> Fields {
    utf8_struct(&SESSION_ISSUER_FIELDS)
}

/// Fields of `userIdentity.sessionContext`.
pub fn session_context_fields() -> Fields {
    Fields::from(vec![
        Field::new("attributes", DataType::Struct(attributes_fields()), true),
        Field::new(
            "sessionIssuer",
            DataType::Struct(session_issuer_fields()),
            true,
        ),
    ])
}

/// Fields of `userIdentity`.
pub fn user_identity_fields() -> Fields {
    let mut fields: Vec<Field> = USER_IDENTITY_FIELDS.iter().map(|n| utf8(n)).collect();
    fields.push(Field::new(
        "sessionContext",
        DataType::Struct(session_context_fields()),
        true,
    ));
    Fields::from(fields)
}

/// The type of `eventTime`: microseconds since the epoch, UTC.
pub fn event_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

static EVENT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields: Vec<Field> = STRINGS_BEFORE_TIME.iter().map(|n| utf8(n)).collect();
    fields.push(Field::new(EVENT_TIME, event_time_type(), false));
    fields.extend(STRINGS_AFTER_TIME.iter().map(|n| utf8(n)));
    fields.push(Field::new(IS_GLOBAL, DataType::Boolean, true));
    fields.extend(STRINGS_AFTER_GLOBAL.iter().map(|n| utf8(n)));
    fields.push(Field::new(
        USER_IDENTITY,
        DataType::Struct(user_identity_fields()),
        true,
    ));
    for name in STRINGS_AFTER_IDENTITY {
        fields.push(Field::new(
            name,
            DataType::Utf8,
            !matches!(name, DIALECT | RAW),
        ));
    }
    Arc::new(Schema::new(fields))
});

/// The schema of the event files (without the partition columns, which live in the path).
/// Part of the store format (`trail-store/1`): changing it means a new format string.
pub fn event_schema() -> SchemaRef {
    EVENT_SCHEMA.clone()
}

/// Index of a top-level column in [`event_schema`].
pub fn column_index(name: &str) -> Option<usize> {
    EVENT_SCHEMA.index_of(name).ok()
}

/// How an audit-log field is typed in the `audit_logs` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditType {
    /// A UNIX time in milliseconds in the record, a UTC timestamp (microseconds) in the table.
    Time,
    Int,
    Bool,
    Text,
}

/// Partition column of `audit_logs`: the UTC date of `LogTime`.
pub const AUDIT_PART_DATE: &str = "logDate";
/// The time an audit log is partitioned and ordered by.
pub const AUDIT_LOG_TIME: &str = "LogTime";

/// The fields of a data-audit log (a `DescribeAuditLogs` item), as the API spells them, in
/// table order, with their types. `raw` (the record as delivered) follows them.
pub const AUDIT_COLUMNS: [(&str, AuditType); 36] = [
    (AUDIT_LOG_TIME, AuditType::Time),
    ("CreationTime", AuditType::Time),
    ("UserName", AuditType::Text),
    ("UserId", AuditType::Text),
    ("ClientIp", AuditType::Text),
    ("ClientPort", AuditType::Text),
    ("ClientUa", AuditType::Text),
    ("IpType", AuditType::Text),
    ("InstanceName", AuditType::Text),
    ("InstanceDescription", AuditType::Text),
    ("DatabaseName", AuditType::Text),
    ("TableName", AuditType::Text),
    ("ColumnName", AuditType::Text),
    ("PackageName", AuditType::Text),
    ("OssObjectKey", AuditType::Text),
    ("DbType", AuditType::Text),
    ("ProductCode", AuditType::Text),
    ("ProductId", AuditType::Int),
    ("OperateType", AuditType::Text),
    ("SqlText", AuditType::Text),
    ("EffectRow", AuditType::Int),
    ("ExecuteTime", AuditType::Int),
    ("ExecuteStatus", AuditType::Int),
    ("Message", AuditType::Text),
    ("DataSet", AuditType::Text),
    ("RuleId", AuditType::Text),
    ("RuleName", AuditType::Text),
    ("RuleCategory", AuditType::Text),
    ("WarnLevel", AuditType::Text),
    ("WarnLevelName", AuditType::Text),
    ("ModelName", AuditType::Text),
    ("LogSource", AuditType::Text),
    ("InWhiteList", AuditType::Bool),
    ("MemberAccount", AuditType::Text),
    ("InstanceAuditStatus", AuditType::Text),
    ("RamConsoleLink", AuditType::Text),
];

/// Fields that say how a console shows an alert today rather than what happened: the risk
/// level's name (in the language the logs were requested in), whether the address is
/// whitelisted now, the instance's description and audit status, a console link. They are
/// left out of an audit log's identity, so the same alert fetched again later, in another
/// language or after a whitelist change, is still the same alert.
pub const AUDIT_PRESENTATION_COLUMNS: [&str; 5] = [
    "WarnLevelName",
    "InWhiteList",
    "InstanceDescription",
    "InstanceAuditStatus",
    "RamConsoleLink",
];

static AUDIT_LOG_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields: Vec<Field> = AUDIT_COLUMNS
        .iter()
        .map(|&(name, t)| {
            let (data_type, nullable) = match t {
                AuditType::Time => (event_time_type(), name != AUDIT_LOG_TIME),
                AuditType::Int => (DataType::Int64, true),
                AuditType::Bool => (DataType::Boolean, true),
                AuditType::Text => (DataType::Utf8, true),
            };
            Field::new(name, data_type, nullable)
        })
        .collect();
    fields.push(Field::new(RAW, DataType::Utf8, false));
    Arc::new(Schema::new(fields))
});

/// The schema of the audit-log files (without `logDate`, which lives in the path).
pub fn audit_log_schema() -> SchemaRef {
    AUDIT_LOG_SCHEMA.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_the_documented_columns() {
        let s = event_schema();
        assert_eq!(s.fields().len(), 29);
        assert_eq!(column_index(EVENT_TIME), Some(7));
        assert!(!s.field_with_name(RAW).unwrap().is_nullable());
        let DataType::Struct(ui) = s.field_with_name(USER_IDENTITY).unwrap().data_type() else {
            panic!("userIdentity is a struct")
        };
        assert!(ui.find("userName").is_some());
        assert!(ui.find("sessionContext").is_some());
    }

    /// The event schema is part of the store format: when this snapshot changes, the format
    /// string in `manifest.rs` must change too (readers hand this schema to the Parquet reader
    /// for every file a `trail-store/1` manifest lists).
    #[test]
    fn schema_is_the_store_formats() {
        fn walk(prefix: &str, fields: &Fields, out: &mut Vec<String>) {
            for f in fields {
                let name = format!("{prefix}{}", f.name());
                let null = if f.is_nullable() { "" } else { " NOT NULL" };
                match f.data_type() {
                    DataType::Struct(children) => {
                        out.push(format!("{name}: Struct{null}"));
                        walk(&format!("{name}."), children, out)
                    }
                    t => out.push(format!("{name}: {t}{null}")),
                }
            }
        }
        let mut leaves = Vec::new();
        walk("", event_schema().fields(), &mut leaves);
        insta::assert_snapshot!(leaves.join("\n"));
    }

    #[test]
    fn audit_log_schema_types_what_the_api_documents() {
        let s = audit_log_schema();
        assert_eq!(s.fields().len(), 37);
        assert_eq!(s.field(0).name(), AUDIT_LOG_TIME);
        assert!(!s.field(0).is_nullable());
        assert_eq!(
            s.field_with_name("CreationTime").unwrap().data_type(),
            &event_time_type()
        );
        for n in ["ExecuteTime", "EffectRow", "ExecuteStatus", "ProductId"] {
            assert_eq!(s.field_with_name(n).unwrap().data_type(), &DataType::Int64);
        }
        assert_eq!(
            s.field_with_name("InWhiteList").unwrap().data_type(),
            &DataType::Boolean
        );
        assert_eq!(s.field_with_name(RAW).unwrap().data_type(), &DataType::Utf8);
        for p in AUDIT_PRESENTATION_COLUMNS {
            assert!(s.field_with_name(p).is_ok(), "{p}");
        }
    }
}
