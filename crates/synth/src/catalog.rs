//! Fixed reference tables of the synthetic world: tariff chapters, countries, offices,
//! transport modes, couriers and tax types. Everything random is built from these in
//! [`crate::world`].

/// Transport modes, in the order used by mode indexes everywhere.
pub(crate) const MODES: [&str; 5] = ["SEA", "AIR", "ROAD", "RAIL", "POST"];
pub(crate) const SEA: u8 = 0;
pub(crate) const AIR: u8 = 1;
pub(crate) const ROAD: u8 = 2;
pub(crate) const RAIL: u8 = 3;
pub(crate) const POST: u8 = 4;

/// Median (kg) and log-sd of the gross mass of a consignment, per mode.
pub(crate) const MODE_MASS: [(f64, f64); 5] = [
    (6000.0, 1.2),
    (120.0, 1.3),
    (2500.0, 1.0),
    (12000.0, 0.8),
    (2.5, 0.9),
];

/// Customs offices: name and the mode they clear.
pub(crate) const OFFICES: [(&str, u8); 12] = [
    ("PORT-NORTH", SEA),
    ("PORT-SOUTH", SEA),
    ("PORT-EAST", SEA),
    ("FREEZONE-1", SEA),
    ("AIRPORT-CAPITAL", AIR),
    ("AIRPORT-COAST", AIR),
    ("BORDER-WEST-1", ROAD),
    ("BORDER-WEST-2", ROAD),
    ("BORDER-EAST", ROAD),
    ("INLAND-DEPOT", ROAD),
    ("RAIL-TERMINAL", RAIL),
    ("POST-HUB", POST),
];

/// Express couriers (only air and post consignments carry one). The last one is the
/// slightly riskier operator.
pub(crate) const COURIERS: [&str; 6] = [
    "EXPRESS-A",
    "EXPRESS-B",
    "EXPRESS-C",
    "EXPRESS-D",
    "EXPRESS-E",
    "EXPRESS-F",
];
pub(crate) const COURIER_RISK: [f32; 6] = [0.0, 0.0, 0.0, 0.1, 0.0, 0.5];

/// Tax types (duty regime of the tariff line).
pub(crate) const TAX_TYPES: [&str; 4] = ["STD", "EXC", "TQ", "AD"];
pub(crate) const TAX_STD: u8 = 0;
pub(crate) const TAX_EXC: u8 = 1;
pub(crate) const TAX_TQ: u8 = 2;
pub(crate) const TAX_AD: u8 = 3;

/// A tariff chapter: HS2 code, MFN base duty (%), median unit value (currency per kg),
/// relative trade weight, excise goods.
pub(crate) struct Chapter {
    pub code: u8,
    pub duty: f32,
    pub unit_value: f64,
    pub weight: f64,
    pub excise: bool,
}

const fn ch(code: u8, duty: f32, unit_value: f64, weight: f64, excise: bool) -> Chapter {
    Chapter {
        code,
        duty,
        unit_value,
        weight,
        excise,
    }
}

pub(crate) const CHAPTERS: [Chapter; 25] = [
    ch(3, 10.0, 6.0, 3.0, false),   // fish
    ch(8, 12.0, 2.5, 4.0, false),   // fruit, nuts
    ch(9, 8.0, 6.0, 3.0, false),    // coffee, tea, spices
    ch(17, 15.0, 0.8, 2.0, false),  // sugar
    ch(22, 20.0, 3.0, 3.0, true),   // beverages
    ch(24, 30.0, 25.0, 1.0, true),  // tobacco
    ch(27, 2.0, 0.7, 2.0, true),    // mineral fuels
    ch(30, 2.0, 120.0, 3.0, false), // pharmaceuticals
    ch(33, 10.0, 20.0, 3.0, false), // cosmetics
    ch(39, 6.5, 3.0, 8.0, false),   // plastics
    ch(40, 10.0, 4.0, 4.0, false),  // rubber, tyres
    ch(42, 15.0, 40.0, 3.0, false), // leather goods
    ch(52, 8.0, 4.0, 3.0, false),   // cotton
    ch(61, 20.0, 25.0, 6.0, false), // knitted apparel
    ch(62, 20.0, 30.0, 6.0, false), // woven apparel
    ch(64, 20.0, 18.0, 4.0, false), // footwear
    ch(69, 12.0, 2.0, 2.0, false),  // ceramics
    ch(72, 5.0, 0.9, 4.0, false),   // iron and steel
    ch(73, 8.0, 3.0, 5.0, false),   // steel articles
    ch(84, 3.0, 25.0, 10.0, false), // machinery
    ch(85, 5.0, 40.0, 10.0, false), // electrical equipment
    ch(87, 15.0, 10.0, 5.0, false), // vehicles and parts
    ch(90, 2.0, 120.0, 3.0, false), // optical, medical
    ch(94, 12.0, 5.0, 4.0, false),  // furniture
    ch(95, 10.0, 9.0, 4.0, false),  // toys
];

/// Chapter whose undervaluation hazard jumps in the drift period (HS 85, electrical).
pub(crate) const DRIFT_CHAPTER: u8 = 85;

/// A country: ISO code, trade weight as an origin, free-trade partner (preferential duty),
/// neighbour (road/rail reachable), fraud risk offset (logit), on the legacy rule's list.
pub(crate) struct Country {
    pub code: &'static str,
    pub weight: f64,
    pub fta: bool,
    pub neighbour: bool,
    pub risk: f32,
    pub rule_listed: bool,
}

const fn co(
    code: &'static str,
    weight: f64,
    fta: bool,
    neighbour: bool,
    risk: f32,
    rule_listed: bool,
) -> Country {
    Country {
        code,
        weight,
        fta,
        neighbour,
        risk,
        rule_listed,
    }
}

pub(crate) const COUNTRIES: [Country; 32] = [
    co("CN", 25.0, false, false, 0.35, true),
    co("US", 6.0, false, false, -0.3, false),
    co("DE", 6.0, true, true, -0.4, false),
    co("JP", 4.0, false, false, -0.4, false),
    co("KR", 4.0, false, false, -0.2, false),
    co("IN", 5.0, false, false, 0.2, false),
    co("VN", 5.0, true, false, 0.3, true),
    co("MY", 3.0, true, false, 0.1, false),
    co("TH", 3.0, true, false, 0.1, false),
    co("ID", 3.0, true, false, 0.1, false),
    co("TR", 4.0, true, true, 0.3, true),
    co("MA", 2.0, true, false, 0.1, false),
    co("MX", 2.0, true, false, 0.0, false),
    co("BR", 2.0, false, false, 0.0, false),
    co("FR", 4.0, true, true, -0.4, false),
    co("IT", 3.0, true, true, -0.3, false),
    co("ES", 2.0, true, true, -0.3, false),
    co("GB", 3.0, true, false, -0.3, false),
    co("BD", 3.0, false, false, 0.4, true),
    co("PK", 2.0, false, false, 0.4, true),
    co("CH", 1.0, true, true, -0.5, false),
    co("NL", 2.0, true, true, -0.4, false),
    co("ZA", 1.0, false, false, 0.0, false),
    co("EG", 1.0, false, false, 0.2, false),
    co("AE", 1.0, false, false, 0.3, false),
    co("SG", 1.0, true, false, -0.2, false),
    co("HK", 1.0, false, false, 0.3, false),
    co("TW", 3.0, false, false, -0.1, false),
    co("CA", 1.0, true, false, -0.4, false),
    co("AU", 1.0, true, false, -0.4, false),
    co("BE", 0.5, true, true, -0.3, false),
    co("PA", 0.2, false, false, 0.2, false),
];

/// Transit hubs used as departure countries different from the origin.
pub(crate) const HUBS: [&str; 6] = ["SG", "AE", "NL", "HK", "PA", "BE"];

/// True origins whose goods are laundered through a preferential partner (origin fraud).
pub(crate) const LAUNDERED_ORIGINS: [&str; 4] = ["CN", "BD", "PK", "IN"];
/// Declared (false) origins of origin fraud before the drift point, with weights.
pub(crate) const FRAUD_ORIGINS_EARLY: [(&str, f64); 2] = [("VN", 0.7), ("TH", 0.3)];
/// ... and after it: the pattern shifts to Malaysia.
pub(crate) const FRAUD_ORIGINS_LATE: [(&str, f64); 2] = [("MY", 0.75), ("VN", 0.25)];

pub(crate) fn country_index(code: &str) -> Option<u8> {
    COUNTRIES
        .iter()
        .position(|c| c.code == code)
        .and_then(|i| u8::try_from(i).ok())
}
