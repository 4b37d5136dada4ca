//! Structure proven before solving: the system is square and *structurally* nonsingular —
//! a perfect matching of equations to unknowns exists in the sparsity pattern of ∂ₓF (read
//! from the Jacobian at a generic point, where only structural zeros vanish). When there is
//! none, the equations and unknowns left unmatched are named.

use super::Problem;
use crate::diag::{Code, Diagnostic, Span};
use crate::system::SystemKind;

#[derive(Clone, Debug)]
pub struct StructureReport {
    /// Size of a maximum matching.
    pub rank: usize,
    pub n: usize,
    /// ∂ₓF is a Hessian (stationarity of an objective or a Lagrangian).
    pub symmetric: bool,
    /// KKT or Lagrangian stationarity: a saddle (indefinite) system.
    pub saddle: bool,
}

/// Largest system for which the structural check runs (it costs n Jacobian products).
pub const STRUCTURE_LIMIT: usize = 3000;

/// Checks the structural rank at a generic point near the start `z0`.
pub fn structural_check(
    p: &Problem,
    z0: &[f64],
    span: Span,
) -> Result<StructureReport, Diagnostic> {
    let n = p.n();
    let symmetric = matches!(p.sys.kind, SystemKind::Stationarity | SystemKind::Saddle);
    let saddle = matches!(p.sys.kind, SystemKind::Saddle | SystemKind::Kkt);
    let report = |rank| StructureReport {
        rank,
        n,
        symmetric,
        saddle,
    };
    if n > STRUCTURE_LIMIT || n != p.m() {
        return Ok(report(n.min(p.m())));
    }
    // A generic point: the start, perturbed by a deterministic pseudo-random amount.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut rand = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut pattern: Option<Vec<Vec<usize>>> = None;
    for attempt in 0..3 {
        let z: Vec<f64> = z0
            .iter()
            .map(|&x| {
                if attempt == 2 {
                    x
                } else {
                    x + 0.1 * (1.0 + x.abs()) * (rand() - 0.5) + 0.3 * (rand() + 0.5)
                }
            })
            .collect();
        let Ok(j) = p.jacobian(&z) else { continue };
        if j.data.iter().any(|v| !v.is_finite()) {
            continue;
        }
        let rows: Vec<Vec<usize>> = (0..n)
            .map(|i| (0..n).filter(|&c| j.get(i, c) != 0.0).collect())
            .collect();
        pattern = Some(rows);
        break;
    }
    let Some(rows) = pattern else {
        // No point without NaN nearby: nothing can be concluded.
        return Ok(report(n));
    };
    let (rank, row_match, col_match) = matching(&rows, n);
    if rank == n {
        return Ok(report(rank));
    }
    let eqs: Vec<String> = (0..n)
        .filter(|&i| row_match[i].is_none())
        .take(8)
        .map(|i| equation_name(p, i))
        .collect();
    let unks: Vec<String> = (0..n)
        .filter(|&c| col_match[c].is_none())
        .take(8)
        .map(|c| unknown_name(p, c))
        .collect();
    Err(Diagnostic::error(
        Code::StructurallySingular,
        format!("the system is structurally singular: at most {rank} of its {n} equations can be matched to distinct unknowns"),
    )
    .at(span, "cannot be solved for every unknown")
    .note(format!("equations left over: {}", eqs.join(", ")))
    .note(format!("unknowns left over: {}", unks.join(", ")))
    .help("an unknown that no equation involves, or equations that all involve the same few unknowns, leave the system without a unique solution"))
}

/// Maximum bipartite matching by augmenting paths (iterative DFS).
fn matching(rows: &[Vec<usize>], n: usize) -> (usize, Vec<Option<usize>>, Vec<Option<usize>>) {
    let mut row_match: Vec<Option<usize>> = vec![None; rows.len()];
    let mut col_match: Vec<Option<usize>> = vec![None; n];
    let mut rank = 0;
    for r0 in 0..rows.len() {
        let mut visited = vec![false; n];
        // Stack of (row, next edge index); parent column for each visited row.
        let mut stack: Vec<(usize, usize)> = vec![(r0, 0)];
        let mut via: Vec<(usize, usize)> = Vec::new(); // (row, col) along the path
        let mut found = false;
        while let Some(&mut (r, ref mut k)) = stack.last_mut() {
            if *k >= rows[r].len() {
                stack.pop();
                via.pop();
                continue;
            }
            let c = rows[r][*k];
            *k += 1;
            if visited[c] {
                continue;
            }
            visited[c] = true;
            via.push((r, c));
            match col_match[c] {
                None => {
                    found = true;
                    break;
                }
                Some(r2) => stack.push((r2, 0)),
            }
        }
        if found {
            // Flip the path.
            for &(r, c) in &via {
                row_match[r] = Some(c);
                col_match[c] = Some(r);
            }
            rank += 1;
        }
    }
    (rank, row_match, col_match)
}

fn equation_name(p: &Problem, row: usize) -> String {
    for (b, &(off, len)) in p.sys.blocks.iter().zip(&p.fns.layout.blocks) {
        if row >= off && row < off + len {
            return if len == 1 {
                b.name.clone()
            } else {
                format!("{}[{}]", b.name, row - off + 1)
            };
        }
    }
    format!("equation {}", row + 1)
}

pub(crate) fn unknown_name(p: &Problem, col: usize) -> String {
    for (u, &(_, off, len)) in p.sys.unknowns.iter().zip(&p.fns.layout.unknowns) {
        if col >= off && col < off + len {
            return if len == 1 {
                u.name.clone()
            } else {
                format!("{}[{}]", u.name, col - off + 1)
            };
        }
    }
    format!("unknown {}", col + 1)
}

#[cfg(test)]
mod tests {
    use super::matching;

    #[test]
    fn matching_finds_perfect_and_deficient_cases() {
        // Rows 0 and 1 both only touch column 0: rank 2 of 3.
        let rows = vec![vec![0], vec![0], vec![0, 1, 2]];
        let (rank, rm, _) = matching(&rows, 3);
        assert_eq!(rank, 2);
        assert_eq!(rm.iter().filter(|m| m.is_none()).count(), 1);
        // A permutation needs augmenting paths.
        let rows = vec![vec![0, 1], vec![0], vec![1, 2]];
        assert_eq!(matching(&rows, 3).0, 3);
    }
}
