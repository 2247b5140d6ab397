//! "Did you mean": the existing name a user most likely meant when the one
//! they typed does not exist, and short listings of what does exist.

/// The existing name `wanted` is most likely a typo of: one that differs
/// only in case, or by one edit (two for names longer than five
/// characters; a swap of neighbours counts as one). Names that differ only
/// in their digits are deliberate siblings (`actor-1`, `actor-12`) and are
/// never suggested for each other.
pub fn near_miss<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = if wanted.chars().count() > 5 { 2 } else { 1 };
    let letters = |s: &str| -> String { s.chars().filter(|c| !c.is_ascii_digit()).collect() };
    let wanted_letters = letters(wanted);
    names
        .into_iter()
        .filter(|name| *name != wanted)
        .filter_map(|name| {
            if name.eq_ignore_ascii_case(wanted) {
                return Some((0, name));
            }
            if letters(name) == wanted_letters {
                return None;
            }
            let distance = strsim::damerau_levenshtein(wanted, name);
            (distance <= limit).then_some((distance, name))
        })
        .min()
        .map(|(_, name)| name)
}

/// `" (did you mean 'main'?)"`, or nothing when no name is close.
pub fn did_you_mean<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    near_miss(wanted, names)
        .map(|name| format!(" (did you mean '{name}'?)"))
        .unwrap_or_default()
}

/// The names quoted and comma-separated, at most `max` of them, then how
/// many more there are.
pub fn listing(names: &[&str], max: usize) -> String {
    let shown: Vec<String> = names.iter().take(max).map(|n| format!("'{n}'")).collect();
    match names.len().saturating_sub(max) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_caught_and_numbered_siblings_are_not() {
        let streams = ["main", "actor-1", "actor-12", "eval"];
        assert_eq!(near_miss("mian", streams), Some("main"));
        assert_eq!(near_miss("Main", streams), Some("main"));
        assert_eq!(near_miss("actr-1", streams), Some("actor-1"));
        assert_eq!(near_miss("actor-2", streams), None);
        assert_eq!(near_miss("actor-123", streams), None);
        assert_eq!(near_miss("training", streams), None);
        assert_eq!(near_miss("main", streams), None);
        assert_eq!(did_you_mean("evl", streams), " (did you mean 'eval'?)");
        assert_eq!(did_you_mean("zzz", streams), "");
    }

    #[test]
    fn long_listings_are_cut() {
        assert_eq!(listing(&["a", "b"], 5), "'a', 'b'");
        assert_eq!(listing(&["a", "b", "c"], 2), "'a', 'b' and 1 more");
    }
}
