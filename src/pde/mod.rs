//! The Barron-network PDE driver: `solve NAME using barron(...)` for a `pde` block.
//!
//! The energy E(θ) = ∫ L(x, u, ∇u) − f u of a two-layer network u(x) = Σᵢ aᵢ σ(wᵢ·x + bᵢ) + c
//! is *written in the language* (`source.rs` turns the pde block into `.opt` text: the network,
//! its input gradient, the quadrature sum) and compiled like any model, so symbolic reverse
//! mode and the JIT give E and ∇_θE — there is no hand-written backpropagation. A second
//! program, ½ Σ q (|u − u₀|² + |∇u − ∇u₀|²) at u₀ = u_θ, has the H¹ Gauss–Newton metric
//! G = Jᵀ Q J as its Hessian: its Hessian-vector products build G for the natural-gradient
//! step Δθ = −(G + μI)⁻¹ ∇E of Marwah et al.'s preconditioned method.

mod network;
mod quadrature;
mod sobol;
mod source;
mod train;

pub use network::Network;
pub use source::euler_lagrange;
pub(crate) use train::check_options;
pub use train::{train, PdeReport};

use crate::api::Model;
use crate::diag::{Code, Diagnostic};

/// The generated energy program of a pde block (for inspection and tests): the network of
/// `width` units with activation `activation` (`tanh`, `cos`, `softplus` or `sigmoid`) at
/// `samples` points `nn_X` with weights `nn_q`, and `minimize nn_E`.
pub fn energy_program(
    model: &Model,
    pde: &str,
    samples: usize,
    width: usize,
    activation: &str,
) -> Result<String, Diagnostic> {
    let p = model
        .checked()
        .pdes
        .iter()
        .find(|p| p.name == pde)
        .cloned()
        .ok_or_else(|| Diagnostic::error(Code::UnknownName, format!("no pde named `{pde}`")))?;
    let act = source::Activation::parse(activation).ok_or_else(|| {
        Diagnostic::error(Code::BadArgument, format!("no activation `{activation}`"))
    })?;
    let src = source::pde_source(model, &p)?;
    Ok(source::energy_program(
        &src,
        samples,
        width,
        act,
        source::Extras::SecondOrder,
    ))
}
