//! Static names the API shows but the battle tables do not store: solar system security and
//! names, and item type (ship) names, from the SDE tables embedded in the project (`data/sde/`). Parsed
//! once per process on first use.

use std::collections::HashMap;
use std::sync::OnceLock;

const SYSTEMS: &str = include_str!("../../data/sde/systems.csv");
const TYPES: &str = include_str!("../../data/sde/types.csv");

/// The lookups the API needs from the SDE.
#[derive(Debug, Default)]
pub struct StaticData {
    security: HashMap<i64, f64>,
    system_names: HashMap<i64, String>,
    /// Lower-cased system name to id.
    systems_by_name: HashMap<String, i64>,
    type_names: HashMap<i64, String>,
}

impl StaticData {
    /// The embedded tables, parsed on first use.
    pub fn embedded() -> &'static StaticData {
        static DATA: OnceLock<StaticData> = OnceLock::new();
        DATA.get_or_init(|| {
            let system_names = parse_system_names(SYSTEMS);
            let systems_by_name = system_names
                .iter()
                .map(|(id, name)| (name.to_lowercase(), *id))
                .collect();
            StaticData {
                security: parse_security(SYSTEMS),
                system_names,
                systems_by_name,
                type_names: parse_type_names(TYPES),
            }
        })
    }

    /// The security status of a solar system.
    pub fn security(&self, system_id: i64) -> Option<f64> {
        self.security.get(&system_id).copied()
    }

    /// The name of a solar system.
    pub fn system_name(&self, system_id: i64) -> Option<&str> {
        self.system_names.get(&system_id).map(String::as_str)
    }

    /// The solar system called `name` (case-insensitive).
    pub fn system_by_name(&self, name: &str) -> Option<i64> {
        self.systems_by_name
            .get(&name.trim().to_lowercase())
            .copied()
    }

    /// The name of an item type (ship, structure, ...).
    pub fn type_name(&self, type_id: i64) -> Option<&str> {
        self.type_names.get(&type_id).map(String::as_str)
    }
}

/// `solarSystemID,constellationID,regionID,security,solarSystemName` rows.
fn parse_security(table: &str) -> HashMap<i64, f64> {
    data_rows(table, 5)
        .filter_map(|f| Some((f[0].parse().ok()?, f[3].parse().ok()?)))
        .collect()
}

fn parse_system_names(table: &str) -> HashMap<i64, String> {
    data_rows(table, 5)
        .filter_map(|f| Some((f[0].parse().ok()?, f.get(4)?.trim().to_string())))
        .collect()
}

/// `typeID,groupID,categoryID,typeName` rows; the name is last and may hold commas (the table
/// quotes nothing).
fn parse_type_names(table: &str) -> HashMap<i64, String> {
    data_rows(table, 4)
        .filter_map(|f| Some((f[0].parse().ok()?, f.get(3)?.to_string())))
        .collect()
}

fn data_rows(table: &str, fields: usize) -> impl Iterator<Item = Vec<&str>> {
    table
        .lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(move |line| line.splitn(fields, ',').collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jita_and_well_known_ships() {
        let data = StaticData::embedded();
        let jita = data.security(30000142).expect("Jita is in the SDE");
        assert!((jita - 0.946).abs() < 0.01, "{jita}");
        assert_eq!(data.type_name(587), Some("Rifter"));
        assert_eq!(data.type_name(670), Some("Capsule"));
        assert_eq!(data.type_name(-1), None);
        assert_eq!(data.security(1), None);
        assert_eq!(data.system_name(30001046), Some("Jorund"));
        assert_eq!(data.system_by_name("jorund"), Some(30001046));
        assert_eq!(data.system_by_name(" JITA "), Some(30000142));
        assert_eq!(data.system_by_name("Nowhere"), None);
    }
}
