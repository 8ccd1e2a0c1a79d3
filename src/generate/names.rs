//! Made-up but plausible names for generated characters, corporations and alliances, built from
//! syllables with the generator's random stream (so they are deterministic per seed).

use rand::Rng;

const FIRST: &[&str] = &[
    "ka", "ra", "vel", "tor", "mi", "sha", "dar", "lo", "ne", "zan", "quo", "bri", "ul", "fen",
    "ix", "sol", "ar", "ve", "gri", "hal", "ost", "yri", "cae", "mor",
];
const LAST: &[&str] = &[
    "nen", "ris", "tov", "ala", "dus", "kin", "mar", "ek", "io", "sen", "lar", "yth", "ova",
    "gard", "uki", "rast", "el", "os",
];
const CORP_WORDS: &[&str] = &[
    "Iron",
    "Void",
    "Black",
    "Crimson",
    "Silent",
    "Deep",
    "Rogue",
    "Star",
    "Dark",
    "Frontier",
    "Ember",
    "Northern",
    "Hollow",
    "Vanguard",
    "Wandering",
    "Solar",
    "Obsidian",
    "Grim",
];
const CORP_NOUNS: &[&str] = &[
    "Industries",
    "Syndicate",
    "Logistics",
    "Holdings",
    "Brotherhood",
    "Raiders",
    "Legion",
    "Collective",
    "Enterprises",
    "Cartel",
    "Guard",
    "Fleet",
    "Works",
    "Order",
];
const ALLIANCE_NOUNS: &[&str] = &[
    "Alliance",
    "Federation",
    "Coalition",
    "Empire",
    "Union",
    "Covenant",
    "Directorate",
    "Horde",
    "Initiative",
    "Consortium",
];

fn word(rng: &mut impl Rng, parts: &[&[&str]]) -> String {
    let mut w: String = parts
        .iter()
        .map(|p| p[rng.random_range(0..p.len())])
        .collect();
    if let Some(first) = w.get(0..1) {
        let upper = first.to_uppercase();
        w.replace_range(0..1, &upper);
    }
    w
}

/// A character name: "Given Family", sometimes a single handle.
pub fn character(rng: &mut impl Rng) -> String {
    let given = word(rng, &[FIRST, LAST]);
    if rng.random_bool(0.2) {
        given
    } else {
        format!("{given} {}", word(rng, &[FIRST, FIRST, LAST]))
    }
}

/// A corporation name.
pub fn corporation(rng: &mut impl Rng) -> String {
    let w = CORP_WORDS[rng.random_range(0..CORP_WORDS.len())];
    let n = CORP_NOUNS[rng.random_range(0..CORP_NOUNS.len())];
    format!("{w} {} {n}", word(rng, &[FIRST, LAST]))
}

/// An alliance name.
pub fn alliance(rng: &mut impl Rng) -> String {
    let n = ALLIANCE_NOUNS[rng.random_range(0..ALLIANCE_NOUNS.len())];
    format!("{} {n}", word(rng, &[FIRST, LAST, LAST]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn names_are_capitalised_and_deterministic() {
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..50 {
            let n = character(&mut a);
            assert_eq!(n, character(&mut b));
            assert!(n.chars().next().unwrap().is_uppercase(), "{n}");
        }
        assert!(corporation(&mut a).contains(' '));
        assert!(alliance(&mut a).contains(' '));
    }
}
