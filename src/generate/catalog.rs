//! What the generator destroys and shoots with: ship classes with their real SDE type ids,
//! typical killmail value and hit points, weapon modules, NPC rats and sentry guns, structures
//! and deployables. Every id here is a real SDE type id (checked by a test against the embedded
//! universe).

/// A hull class: what fleets are built from and what the price and hit points depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShipClass {
    Frigate,
    Interceptor,
    AssaultFrigate,
    StealthBomber,
    CovertOps,
    Destroyer,
    Interdictor,
    TacticalDestroyer,
    CommandDestroyer,
    Cruiser,
    HeavyAssaultCruiser,
    HeavyInterdictor,
    Logistics,
    ForceRecon,
    StrategicCruiser,
    Battlecruiser,
    AttackBattlecruiser,
    CommandShip,
    Battleship,
    Carrier,
    Dreadnought,
    ForceAuxiliary,
    Supercarrier,
    Titan,
    Hauler,
    Freighter,
    MiningBarge,
    Exhumer,
    Capsule,
}

/// Weapon sizes: which module ids an attacker in a hull of this class reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeaponSize {
    Small,
    Medium,
    Large,
    Support,
}

/// The facts of one class.
#[derive(Debug)]
pub struct ClassInfo {
    /// Real ship type ids (category 6).
    pub types: &'static [i64],
    /// Median total killmail value (hull + fit + cargo), ISK.
    pub median_isk: f64,
    /// Median damage needed to kill it.
    pub median_ehp: f64,
    /// Relative damage an attacker in this hull deals.
    pub dps: f64,
    pub weapons: WeaponSize,
}

impl ShipClass {
    /// The class's facts.
    pub fn info(self) -> &'static ClassInfo {
        use ShipClass::*;
        use WeaponSize::*;
        macro_rules! class {
            ($types:expr, $isk:expr, $ehp:expr, $dps:expr, $w:expr) => {{
                const INFO: ClassInfo = ClassInfo {
                    types: &$types,
                    median_isk: $isk,
                    median_ehp: $ehp,
                    dps: $dps,
                    weapons: $w,
                };
                &INFO
            }};
        }
        match self {
            Frigate => class!(
                [587, 603, 593, 597, 594, 608, 602, 589],
                4.0e6,
                3.0e3,
                1.0,
                Small
            ),
            Interceptor => class!(
                [11176, 11178, 11184, 11186, 11196, 11198, 11200, 11202],
                35.0e6,
                4.0e3,
                0.8,
                Small
            ),
            AssaultFrigate => class!(
                [11371, 11381, 12044, 11393, 12042, 11379],
                40.0e6,
                8.0e3,
                1.5,
                Small
            ),
            StealthBomber => class!([11377, 12032, 12034, 12038], 55.0e6, 3.0e3, 3.0, Large),
            CovertOps => class!([11192, 11182, 11172, 11188], 30.0e6, 3.0e3, 0.3, Support),
            Destroyer => class!(
                [16236, 16238, 16240, 16242, 32872, 32874, 32876, 32878],
                8.0e6,
                5.0e3,
                1.8,
                Small
            ),
            Interdictor => class!([22452, 22456, 22460, 22464], 65.0e6, 9.0e3, 1.0, Small),
            TacticalDestroyer => class!([34317, 34562, 34828, 35683], 90.0e6, 12.0e3, 2.5, Small),
            CommandDestroyer => class!([37480, 37481, 37482, 37483], 70.0e6, 14.0e3, 1.5, Small),
            Cruiser => class!(
                [620, 621, 622, 623, 624, 626, 627, 629, 17843, 17709, 17634],
                25.0e6,
                20.0e3,
                2.0,
                Medium
            ),
            HeavyAssaultCruiser => class!(
                [11993, 11999, 12003, 12005, 12011, 12015, 12019, 12023],
                260.0e6,
                60.0e3,
                3.5,
                Medium
            ),
            HeavyInterdictor => class!([11995, 12013, 12017, 12021], 320.0e6, 90.0e3, 1.5, Medium),
            Logistics => class!([11978, 11985, 11987, 11989], 240.0e6, 50.0e3, 0.2, Support),
            ForceRecon => class!(
                [11957, 11963, 11965, 11969, 11959, 11961, 11971, 20125],
                280.0e6,
                40.0e3,
                1.2,
                Medium
            ),
            StrategicCruiser => class!([29984, 29986, 29988, 29990], 650.0e6, 90.0e3, 3.5, Medium),
            Battlecruiser => class!(
                [16227, 16229, 16231, 16233, 24696, 24698, 24700, 24702],
                75.0e6,
                70.0e3,
                3.0,
                Medium
            ),
            AttackBattlecruiser => class!([4302, 4306, 4308, 4310], 90.0e6, 35.0e3, 5.0, Large),
            CommandShip => class!(
                [22442, 22444, 22446, 22448, 22466, 22468, 22470, 22474],
                480.0e6,
                150.0e3,
                3.0,
                Medium
            ),
            Battleship => class!(
                [638, 639, 641, 642, 643, 645, 24688, 24690, 24692, 24694, 17736, 17738],
                280.0e6,
                200.0e3,
                5.0,
                Large
            ),
            Carrier => class!([23757, 23911, 23915, 24483], 2.6e9, 2.5e6, 8.0, Large),
            Dreadnought => class!(
                [19720, 19722, 19724, 19726, 52907],
                3.5e9,
                4.0e6,
                25.0,
                Large
            ),
            ForceAuxiliary => class!([37604, 37605, 37606, 37607], 3.2e9, 5.0e6, 0.5, Support),
            Supercarrier => class!(
                [3514, 22852, 23913, 23917, 23919],
                28.0e9,
                20.0e6,
                30.0,
                Large
            ),
            Titan => class!([671, 3764, 11567, 23773], 95.0e9, 60.0e6, 40.0, Large),
            Hauler => class!(
                [648, 649, 650, 652, 657, 1944, 12729, 12731, 12745],
                45.0e6,
                25.0e3,
                0.0,
                Support
            ),
            Freighter => class!(
                [20183, 20185, 20187, 20189, 28844, 28846],
                3.0e9,
                350.0e3,
                0.0,
                Support
            ),
            MiningBarge => class!([17476, 17478, 17480], 50.0e6, 30.0e3, 0.2, Support),
            Exhumer => class!([22544, 22546, 22548], 280.0e6, 60.0e3, 0.2, Support),
            Capsule => class!([670], 1.0e4, 500.0, 0.0, Support),
        }
    }

    /// True for the hulls that only appear in large fights.
    pub fn is_capital(self) -> bool {
        use ShipClass::*;
        matches!(
            self,
            Carrier | Dreadnought | ForceAuxiliary | Supercarrier | Titan
        )
    }
}

/// The capsule's type id.
pub const CAPSULE: i64 = 670;

/// Weapon module (and drone) type ids by size.
pub fn weapons(size: WeaponSize) -> &'static [i64] {
    match size {
        // Light Missile Launcher II, Light Neutron Blaster II, 200mm AutoCannon II,
        // Small Focused Pulse Laser II, Rapid Light Missile Launcher II.
        WeaponSize::Small => &[2404, 3178, 2889, 3041, 1877],
        // Heavy Missile Launcher II, Focused Medium Pulse Laser II, Heavy Neutron Blaster II,
        // Dual 180mm AutoCannon II, Heavy Assault Missile Launcher II, Warrior II, Hammerhead II.
        WeaponSize::Medium => &[2410, 3512, 3146, 2937, 25715, 2488, 2185],
        // Mega Pulse Laser II, Neutron Blaster Cannon II, 1400mm Howitzer Artillery II,
        // Torpedo Launcher II, Cruise Missile Launcher II, Rapid Heavy Missile Launcher II,
        // Hobgoblin II, 425mm Railgun II.
        WeaponSize::Large => &[3057, 3186, 2961, 2420, 19739, 33450, 2456, 3090],
        // Warp Disruptor II, Stasis Webifier II, Medium Energy Neutralizer II, Warrior II.
        WeaponSize::Support => &[3244, 527, 12267, 2488],
    }
}

/// A pirate faction's rats: NPC corporation, faction and ship type ids.
#[derive(Debug)]
pub struct RatFaction {
    pub corporation_id: i64,
    pub corporation_name: &'static str,
    pub faction_id: i64,
    pub ship_types: &'static [i64],
}

/// Rats of null- and low-sec belts and anomalies.
pub const RAT_FACTIONS: &[RatFaction] = &[
    RatFaction {
        corporation_id: 1000127,
        corporation_name: "Guristas",
        faction_id: 500010,
        ship_types: &[2382, 24150, 16989, 16999],
    },
    RatFaction {
        corporation_id: 1000135,
        corporation_name: "Serpentis Corporation",
        faction_id: 500020,
        ship_types: &[2370, 24170, 17118],
    },
    RatFaction {
        corporation_id: 1000124,
        corporation_name: "Archangels",
        faction_id: 500011,
        ship_types: &[2372, 16899, 24112],
    },
    RatFaction {
        corporation_id: 1000134,
        corporation_name: "Blood Raiders",
        faction_id: 500012,
        ship_types: &[24135, 16930],
    },
    RatFaction {
        corporation_id: 1000162,
        corporation_name: "True Power",
        faction_id: 500019,
        ship_types: &[24158, 24075],
    },
];

/// Sleepers, the rats of wormhole space (no corporation or faction on the killmail).
pub const SLEEPERS: &[i64] = &[30199, 30200, 30188, 30189, 30190, 30191, 30192];

/// Empire sentry guns that shoot criminals at low-sec gates and stations.
pub const SENTRY_GUNS: &[i64] = &[1194, 3742, 3743];

/// Upwell structures (category 65) that die in big fights.
pub const STRUCTURES: &[(i64, f64)] = &[
    (35832, 1.6e9), // Astrahus
    (35833, 9.0e9), // Fortizar
    (35825, 1.1e9), // Raitaru
    (35835, 1.2e9), // Athanor
];

/// Deployables (category 22) that die in fights: mobile depot, warp disruptors, tractor unit.
pub const FIGHT_DEPLOYABLES: &[(i64, f64)] = &[
    (33474, 1.5e6),  // Mobile Depot
    (12199, 25.0e6), // Mobile Medium Warp Disruptor I
    (12200, 35.0e6), // Mobile Large Warp Disruptor I
    (33475, 5.0e6),  // Mobile Tractor Unit
];

/// What a spam run kills by the dozen.
pub const SPAM_DEPLOYABLES: &[(i64, f64)] = &[
    (33475, 5.0e6), // Mobile Tractor Unit
    (33474, 1.5e6), // Mobile Depot
];

/// NPC corporations that new and alt characters sit in (no alliance).
pub const NPC_CORPORATIONS: &[(i64, &str)] = &[
    (1000044, "School of Applied Knowledge"),
    (1000045, "Science and Trade Institute"),
    (1000115, "University of Caille"),
    (1000165, "Hedion University"),
    (1000166, "Imperial Academy"),
    (1000167, "State War Academy"),
    (1000168, "Federal Navy Academy"),
    (1000169, "Center for Advanced Studies"),
    (1000170, "Republic Military School"),
    (1000171, "Republic University"),
    (1000172, "Pator Tech School"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use battles_dataflow::Universe;

    const ALL: &[ShipClass] = &[
        ShipClass::Frigate,
        ShipClass::Interceptor,
        ShipClass::AssaultFrigate,
        ShipClass::StealthBomber,
        ShipClass::CovertOps,
        ShipClass::Destroyer,
        ShipClass::Interdictor,
        ShipClass::TacticalDestroyer,
        ShipClass::CommandDestroyer,
        ShipClass::Cruiser,
        ShipClass::HeavyAssaultCruiser,
        ShipClass::HeavyInterdictor,
        ShipClass::Logistics,
        ShipClass::ForceRecon,
        ShipClass::StrategicCruiser,
        ShipClass::Battlecruiser,
        ShipClass::AttackBattlecruiser,
        ShipClass::CommandShip,
        ShipClass::Battleship,
        ShipClass::Carrier,
        ShipClass::Dreadnought,
        ShipClass::ForceAuxiliary,
        ShipClass::Supercarrier,
        ShipClass::Titan,
        ShipClass::Hauler,
        ShipClass::Freighter,
        ShipClass::MiningBarge,
        ShipClass::Exhumer,
        ShipClass::Capsule,
    ];

    fn category(id: i64) -> i64 {
        Universe::embedded()
            .item_type(id)
            .unwrap_or_else(|| panic!("type {id} is not in the SDE"))
            .category_id
    }

    #[test]
    fn every_hull_is_a_real_ship_type() {
        for class in ALL {
            for &t in class.info().types {
                assert_eq!(category(t), 6, "{class:?} type {t}");
            }
        }
    }

    #[test]
    fn every_other_id_is_a_real_type_of_the_right_category() {
        for size in [
            WeaponSize::Small,
            WeaponSize::Medium,
            WeaponSize::Large,
            WeaponSize::Support,
        ] {
            for &w in weapons(size) {
                assert!([7, 18].contains(&category(w)), "weapon {w}");
            }
        }
        for f in RAT_FACTIONS {
            for &t in f.ship_types {
                assert_eq!(category(t), 11, "rat {t}");
            }
        }
        for &t in SLEEPERS.iter().chain(SENTRY_GUNS) {
            assert_eq!(category(t), 11, "npc {t}");
        }
        for &(t, _) in STRUCTURES {
            assert_eq!(category(t), 65, "structure {t}");
        }
        for &(t, _) in FIGHT_DEPLOYABLES.iter().chain(SPAM_DEPLOYABLES) {
            assert_eq!(category(t), 22, "deployable {t}");
        }
    }
}
