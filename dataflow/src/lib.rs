//! The battle clustering engine: a timely + differential-dataflow graph that takes killmail
//! insertions and retractions and keeps every battle, with its sides and statistics, up to date.
//! Pure: no I/O. The stream service, backfill, re-clustering, tests and benches all drive it
//! through [`Engine`].

pub mod killmail;
pub mod report;
pub mod universe;

pub use killmail::{Attacker, Killmail, KillmailId, Victim};
pub use report::{battle_id, BattleReport, Team};
pub use universe::Universe;
