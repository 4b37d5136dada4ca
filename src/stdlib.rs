//! The standard library: `.opt` modules written in the language, embedded in the binary so
//! `use NAME` works wherever optc runs.

/// (name, source text) of every module.
pub const MODULES: &[(&str, &str)] = &[
    ("prox", include_str!("../stdlib/prox.opt")),
    ("losses", include_str!("../stdlib/losses.opt")),
    ("nn", include_str!("../stdlib/nn.opt")),
];

pub fn module(name: &str) -> Option<&'static str> {
    MODULES.iter().find(|m| m.0 == name).map(|m| m.1)
}
