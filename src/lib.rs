//! The `platestream` command's building blocks, public so that tests and benchmarks drive the
//! same code paths users do.

pub mod archive_stats;
pub mod bench;
pub mod bench_queries;
pub mod broker;
pub mod compact_cmd;
pub mod config;
pub mod demo;
pub mod demo_call;
pub mod evaluate;
pub mod hotlist_cmd;
pub mod hotlist_sources;
pub mod hotlists;
pub mod query;
pub mod readers;
pub mod replay;
pub mod run;
pub mod search;
pub mod serve;
pub mod simulate_cmd;
