//! The words of synthetic traffic: template names and categories, user names, message texts and
//! ad headlines. Lines refer to them by index, so changing a list changes the output.

use tarifa_core::category::TemplateCategory;

/// A template as `index + 1` into [`TEMPLATES`]; [`FREE_FORM`] for a non-template message.
pub(super) type TemplateId = u8;
pub(super) const FREE_FORM: TemplateId = 0;
/// `shipping_update`; `delivery_eta` follows it.
pub(super) const SHIPPING_UPDATE: TemplateId = 8;

use TemplateCategory::{Authentication, Marketing, Utility};

/// Templates, grouped by category.
pub(super) static TEMPLATES: &[(&str, TemplateCategory)] = &[
    ("summer_sale", Marketing),
    ("weekly_deals", Marketing),
    ("abandoned_cart", Marketing),
    ("new_arrivals", Marketing),
    ("loyalty_points", Marketing),
    ("win_back_offer", Marketing),
    ("order_confirmation", Utility),
    ("shipping_update", Utility),
    ("delivery_eta", Utility),
    ("payment_reminder", Utility),
    ("appointment_reminder", Utility),
    ("account_alert", Utility),
    ("otp_login", Authentication),
    ("verify_phone", Authentication),
    ("password_reset_code", Authentication),
];

/// The category of a message: `None` for free-form.
pub(super) fn category_of(template: TemplateId) -> Option<TemplateCategory> {
    let index = usize::from(template).checked_sub(1)?;
    TEMPLATES.get(index).map(|(_, category)| *category)
}

/// The templates of `category`: first index into [`TEMPLATES`] and count.
pub(super) fn templates_of(category: TemplateCategory) -> (usize, usize) {
    let first = TEMPLATES
        .iter()
        .position(|(_, c)| *c == category)
        .unwrap_or(0);
    let count = TEMPLATES.iter().filter(|(_, c)| *c == category).count();
    (first, count)
}

pub(super) static NAMES: &[&str] = &[
    "Ana",
    "João",
    "Mariana",
    "Lucas",
    "Priya",
    "Rahul",
    "Ananya",
    "Arjun",
    "Siti",
    "Budi",
    "Dewi",
    "María",
    "José",
    "Guadalupe",
    "Emma",
    "Lukas",
    "Chinedu",
    "Amina",
    "Olivia",
    "Noah",
    "Fatima",
    "Wei",
    "Thao",
    "Carlos",
    "Aisha",
    "Kwame",
    "Sofia",
    "Mehmet",
    "Nadia",
    "Juan",
];

pub(super) static TEXTS: &[&str] = &[
    "hi",
    "Hello",
    "Olá, tudo bem?",
    "Is my order shipped?",
    "I want to know the price",
    "Namaste",
    "Halo kak, masih ada stok?",
    "Hola, ¿tienen envío a domicilio?",
    "Thanks!",
    "ok",
    "Can I change my delivery address?",
    "When do you open?",
    "👍",
    "Quero saber do meu pedido",
    "Guten Tag, ich habe eine Frage",
    "How do I reset my password?",
];

pub(super) static HEADLINES: &[&str] = &[
    "Free shipping this week",
    "Get 20% off your first order",
    "Book a test drive",
    "Chat with us on WhatsApp",
    "New collection is here",
];
