//! Where users are: the numbering plans users are drawn from (spec §8 MK-1), with each
//! country's calling code, mobile prefixes, number length and share of global traffic, and the
//! drawing of a number from a plan.

use super::random::Rng;
use tarifa_core::market::Country;

/// A numbering plan to draw users from: calling code, mobile prefixes (national), national
/// significant number length, weight (‰ of global traffic).
pub(super) struct Plan {
    pub country: Country,
    pub weight: u32,
    cc: &'static str,
    prefixes: &'static [&'static str],
    nsn: u8,
}

const fn plan(
    iso: &[u8; 2],
    weight: u32,
    cc: &'static str,
    prefixes: &'static [&'static str],
    nsn: u8,
) -> Plan {
    Plan {
        country: Country::new(iso),
        weight,
        cc,
        prefixes,
        nsn,
    }
}

#[rustfmt::skip]
pub(super) static PLANS: &[Plan] = &[
    // Large standalone markets.
    plan(b"BR", 210, "55", &["119", "219", "319", "419", "519", "619", "719", "819", "859", "929", "279", "479", "489", "629", "169", "119"], 11),
    plan(b"IN", 170, "91", &["98", "99", "97", "96", "95", "94", "93", "91", "90", "88", "87", "86", "85", "80", "79", "78", "77", "76", "75", "74", "73", "70", "63", "62"], 10),
    plan(b"ID", 85, "62", &["811", "812", "813", "821", "822", "823", "852", "853", "856", "857", "858", "877", "878", "881", "895", "896", "897", "898"], 11),
    plan(b"MX", 30, "52", &["155", "133", "181", "1222", "1664", "1998"], 11),
    plan(b"MX", 40, "52", &["55", "33", "81", "222", "664", "998", "477", "442"], 10),
    plan(b"US", 70, "1", &["212", "213", "305", "312", "347", "404", "415", "469", "512", "617", "646", "702", "713", "786", "818", "917", "929", "954", "416", "514", "604"], 10),
    plan(b"DO", 12, "1", &["809", "829", "849"], 10),
    plan(b"PR", 4, "1", &["787", "939"], 10),
    plan(b"JM", 3, "1", &["876", "658"], 10),
    plan(b"BS", 1, "1", &["242"], 10),
    plan(b"DE", 30, "49", &["151", "152", "157", "159", "160", "162", "170", "171", "172", "173", "174", "175", "176", "177", "178", "179"], 11),
    plan(b"GB", 30, "44", &["7"], 10),
    plan(b"NG", 40, "234", &["703", "706", "803", "806", "810", "813", "814", "816", "903", "906", "701", "802", "808", "708", "812", "902", "907", "901", "705", "805", "807", "815", "811", "905"], 10),
    // Other standalone countries.
    plan(b"AR", 14, "54", &["911", "9351", "9341", "9261"], 11),
    plan(b"CO", 14, "57", &["30", "31", "32", "35"], 10),
    plan(b"CL", 6, "56", &["9"], 9),
    plan(b"PE", 6, "51", &["9"], 9),
    plan(b"ES", 8, "34", &["6", "7"], 9),
    plan(b"IT", 10, "39", &["3"], 10),
    plan(b"FR", 7, "33", &["6", "7"], 9),
    plan(b"NL", 3, "31", &["6"], 9),
    plan(b"EG", 12, "20", &["10", "11", "12", "15"], 10),
    plan(b"TR", 8, "90", &["5"], 10),
    plan(b"PK", 10, "92", &["3"], 10),
    plan(b"SA", 8, "966", &["5"], 9),
    plan(b"AE", 6, "971", &["5"], 9),
    plan(b"ZA", 10, "27", &["6", "7", "8"], 9),
    plan(b"MY", 7, "60", &["1"], 10),
    plan(b"IL", 3, "972", &["5"], 9),
    plan(b"RU", 5, "7", &["9"], 10),
    plan(b"HK", 2, "852", &["5", "6", "9"], 8),
    plan(b"SG", 3, "65", &["8", "9"], 8),
    plan(b"PL", 3, "48", &["5", "6", "7", "8"], 9),
    plan(b"RO", 2, "40", &["7"], 9),
    plan(b"HU", 1, "36", &["20", "30", "70"], 9),
    plan(b"QA", 1, "974", &["3", "5", "6", "7"], 8),
    // Rest of Africa.
    plan(b"KE", 8, "254", &["7", "1"], 9),
    plan(b"GH", 6, "233", &["2", "5"], 9),
    plan(b"TZ", 4, "255", &["6", "7"], 9),
    plan(b"UG", 3, "256", &["7"], 9),
    plan(b"CI", 4, "225", &["07", "05", "01"], 10),
    plan(b"SN", 3, "221", &["7"], 9),
    plan(b"CM", 3, "237", &["6"], 9),
    plan(b"ET", 3, "251", &["9"], 9),
    plan(b"MA", 4, "212", &["6", "7"], 9),
    plan(b"DZ", 3, "213", &["5", "6", "7"], 9),
    plan(b"ZW", 2, "263", &["7"], 9),
    plan(b"ZM", 2, "260", &["9", "7"], 9),
    plan(b"AO", 2, "244", &["9"], 9),
    plan(b"MZ", 2, "258", &["8"], 9),
    // Rest of Asia Pacific.
    plan(b"PH", 12, "63", &["9"], 10),
    plan(b"VN", 6, "84", &["3", "9", "7", "8"], 9),
    plan(b"TH", 5, "66", &["8", "9", "6"], 9),
    plan(b"BD", 6, "880", &["1"], 10),
    plan(b"LK", 3, "94", &["7"], 9),
    plan(b"NP", 3, "977", &["98"], 10),
    plan(b"AU", 4, "61", &["4"], 9),
    plan(b"NZ", 1, "64", &["2"], 9),
    plan(b"JP", 2, "81", &["90", "80", "70"], 10),
    plan(b"CN", 2, "86", &["13", "15", "18"], 11),
    plan(b"TW", 1, "886", &["9"], 9),
    plan(b"KH", 1, "855", &["1", "9", "7"], 9),
    // Rest of Latin America.
    plan(b"EC", 5, "593", &["9"], 9),
    plan(b"GT", 4, "502", &["3", "4", "5"], 8),
    plan(b"SV", 2, "503", &["7"], 8),
    plan(b"HN", 2, "504", &["3", "9"], 8),
    plan(b"BO", 3, "591", &["6", "7"], 8),
    plan(b"PY", 3, "595", &["9"], 9),
    plan(b"UY", 2, "598", &["9"], 8),
    plan(b"VE", 4, "58", &["41"], 10),
    plan(b"PA", 1, "507", &["6"], 8),
    plan(b"CR", 2, "506", &["8", "6"], 8),
    // Rest of Middle East.
    plan(b"JO", 4, "962", &["7"], 9),
    plan(b"KW", 3, "965", &["5", "6", "9"], 8),
    plan(b"BH", 1, "973", &["3"], 8),
    plan(b"OM", 2, "968", &["9"], 8),
    plan(b"IQ", 4, "964", &["7"], 10),
    plan(b"LB", 1, "961", &["3", "7"], 8),
    // Rest of Central & Eastern Europe.
    plan(b"UA", 4, "380", &["50", "67", "93"], 9),
    plan(b"CZ", 2, "420", &["6", "7"], 9),
    plan(b"GR", 2, "30", &["69"], 10),
    plan(b"RS", 1, "381", &["6"], 9),
    plan(b"BG", 1, "359", &["8"], 9),
    // Rest of Western Europe.
    plan(b"PT", 4, "351", &["9"], 9),
    plan(b"CH", 2, "41", &["7"], 9),
    plan(b"AT", 1, "43", &["6"], 10),
    plan(b"BE", 2, "32", &["4"], 9),
    plan(b"SE", 1, "46", &["7"], 9),
    plan(b"IE", 1, "353", &["8"], 9),
    // Other (not listed by Meta), and the ambiguous +7 Kazakhstan.
    plan(b"KR", 3, "82", &["10"], 10),
    plan(b"MM", 2, "95", &["9"], 10),
    plan(b"MU", 1, "230", &["5"], 8),
    plan(b"MV", 1, "960", &["7", "9"], 7),
    plan(b"IS", 1, "354", &["6", "7", "8"], 7),
    plan(b"KZ", 2, "7", &["70", "77"], 10),
];

/// Pre-parsed `calling code + prefix` heads of one plan.
pub(super) struct PlanHeads {
    heads: Vec<(u64, u8)>,
}

/// The heads of every plan of [`PLANS`], in its order.
pub(super) fn plan_heads() -> Vec<PlanHeads> {
    PLANS
        .iter()
        .map(|p| PlanHeads {
            heads: p
                .prefixes
                .iter()
                .map(|pre| {
                    let digits = format!("{}{}", p.cc, pre);
                    let head = digits.parse::<u64>().expect("digits");
                    (head, p.nsn - pre.len() as u8)
                })
                .collect(),
        })
        .collect()
}

impl PlanHeads {
    /// A random number of the plan: one of its heads, then random digits.
    pub(super) fn draw(&self, rng: &mut Rng) -> u64 {
        let (head, rest) = self.heads[rng.below(self.heads.len() as u64) as usize];
        let mut number = head;
        for _ in 0..rest {
            number = number * 10 + rng.below(10);
        }
        number
    }
}
