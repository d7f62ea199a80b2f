//! platestream's pure core: the canonical read, normalization, hotlist matching, alerts and the
//! Parquet archive encoding. Nothing here speaks to a network; connectors feed it bytes.

pub mod alert;
pub mod alert_policy;
pub mod appearance;
pub mod archive;
mod csv_text;
pub mod decode;
pub mod dedupe;
pub mod description;
pub mod geo;
pub mod hotlist;
pub mod images;
pub mod jurisdiction;
pub mod matcher;
pub mod misread;
pub mod ncic;
pub mod normalize;
mod packed_reads;
pub mod pattern;
pub mod pipeline;
pub mod read;
pub mod registry;
pub mod simulate;
pub mod store;
pub mod unarchived;
pub mod vendor;

pub use read::{
    Attribute, ImageRefs, Motion, PlateRead, SourcePosition, Timestamp, VehicleAttributes,
};
