//! The table of diagnostic codes: one row per code, with its exit class, a title, and the
//! long explanation that `optc explain CODE` prints. Codes are stable: never renumber.

/// How a diagnostic maps to the process exit code (DESIGN §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitClass {
    /// The file has errors: exit 1.
    File,
    /// The solver did not converge: exit 2.
    Solver,
    /// A derivative could not be formed: exit 3.
    Derivative,
    /// Command-line usage: exit 64 (EX_USAGE).
    Usage,
    /// Malformed data: exit 65 (EX_DATAERR).
    Data,
    /// A file that cannot be read: exit 66 (EX_NOINPUT).
    NoInput,
    /// A limit was exceeded (size, depth, time): exit 70 (EX_SOFTWARE-like resource class).
    Limit,
}

impl ExitClass {
    /// The process exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            ExitClass::File => 1,
            ExitClass::Solver => 2,
            ExitClass::Derivative => 3,
            ExitClass::Usage => 64,
            ExitClass::Data => 65,
            ExitClass::NoInput => 66,
            ExitClass::Limit => 70,
        }
    }
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $class:ident, $title:literal, $explain:literal; )*) => {
        /// A stable diagnostic code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code { $( #[doc = $title] $variant, )* }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The code as written in diagnostics, e.g. `E0201`.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }

            /// Which exit code an error with this code leads to.
            pub fn exit_class(self) -> ExitClass {
                match self { $( Code::$variant => ExitClass::$class, )* }
            }

            /// One line: what the code means.
            pub fn title(self) -> &'static str {
                match self { $( Code::$variant => $title, )* }
            }

            /// The long form printed by `optc explain`.
            pub fn explanation(self) -> &'static str {
                match self { $( Code::$variant => $explain, )* }
            }

            /// Reads a code like `E0201` (any case).
            pub fn parse(s: &str) -> Option<Code> {
                let s = s.trim().to_ascii_uppercase();
                Code::ALL.iter().copied().find(|c| c.as_str() == s)
            }
        }
    };
}

codes! {
    // ---- E01xx: syntax ------------------------------------------------------------------
    Syntax = "E0101", File, "syntax error",
"The parser could not read the text at the marked place. The message lists what it expected
there. Statements start with a keyword (dim, param, var, let, fn, use, minimize, maximize,
subject to, lagrangian, condition, solve, derive, tune, print, pde) and end at a newline or `;`.
A line continues inside ( ) or [ ], or when it ends with an operator or a comma.

    param a = 2 *        # continues on the next line
          3";
    AssignInsteadOfEq = "E0102", File, "`=` where `==` belongs",
"Conditions and equality constraints compare two sides with `==`; a single `=` defines a name.

    condition x^3 + x - theta = 0      # wrong
    condition x^3 + x - theta == 0     # right";
    UnterminatedString = "E0103", File, "unterminated string",
"A string (used for file names in load(\"...\")) must close with `\"` on the same line.";
    TooDeep = "E0104", Limit, "nesting too deep",
"Brackets, sums, `if` expressions and unary operators are nested more deeply than the compiler
allows (the limit protects the compiler's stack). Split the expression with `let`.";
    BadNumber = "E0105", File, "malformed number",
"A number literal could not be read as a finite 64-bit float, e.g. `1e999` overflows.";
    BadCharacter = "E0106", File, "unexpected character",
"The file contains a character that is not part of the language, or bytes that are not UTF-8.
Identifiers may use Unicode letters (λ, θ); operators are + - * / ^ .* ./ ' and comparisons.";
    ReservedWord = "E0107", File, "reserved word used as a name",
"Keywords (dim, param, var, let, fn, use, minimize, maximize, subject, to, lagrangian, condition,
solve, using, derive, tune, print, pde, if, then, else, for, in, sum, and, or, not) cannot name
things. Pick another name, e.g. `in_` or `sum_x`.";
    UnclosedBracket = "E0108", File, "unclosed or unmatched bracket",
"Every `(` and `[` needs its partner. The marked bracket has none.";
    SourceTooLarge = "E0109", Limit, "source text too large",
"The source text exceeds the configured size limit. Move data into files loaded with load(...).";

    // ---- E02xx: names ------------------------------------------------------------------
    UnknownName = "E0201", File, "unknown name",
"The name is not declared before this point. Declarations (dim, param, var, let, fn) must come
before their use; index variables exist only inside their sum or comprehension. The help line
suggests a close spelling when there is one.";
    Duplicate = "E0202", File, "duplicate definition",
"A name can be declared once. Rename one of the two declarations.";
    UnknownFunction = "E0203", File, "unknown function",
"The called name is neither a builtin nor a `fn` declared earlier in the file or in a module
brought in with `use`. `optc explain E0203` lists nothing more; see docs/LANGUAGE.md for builtins.";
    Arity = "E0204", File, "wrong number of arguments",
"The function takes a different number of arguments than given.";
    UnknownModule = "E0205", File, "unknown module",
"`use NAME` loads stdlib/NAME.opt. The available modules are prox, losses and nn.";
    ShadowsBuiltin = "E0206", File, "name shadows a builtin",
"The name is a builtin function or constant (exp, sum, pi, ...). Pick another name.";
    NotAParam = "E0208", File, "not a parameter",
"Derivatives with respect to the solution (derive, tune) are taken with respect to a `param`.
Partial derivatives grad/jac/hess take a `var` or a `param`.";
    UnknownConstraint = "E0209", File, "unknown constraint",
"dual(NAME) takes the name of a `subject to NAME: ...` constraint.";
    UnknownMethod = "E0210", File, "unknown method or option",
"The `using` clause names a method or option that does not exist for this statement.";
    NotInScope = "E0211", File, "not usable here",
"The name refers to something that cannot be used in this position, e.g. a function name used
as a value, a var inside a param's default value, or an index variable outside its binder.";

    // ---- E03xx: shapes and types -------------------------------------------------------
    ShapeMismatch = "E0301", File, "shape mismatch",
"The two operands have shapes that do not fit together. Elementwise operators (+ - .* ./ and
functions of a scalar) need equal shapes or a scalar on one side. The labels say where each
shape comes from.";
    ProductMismatch = "E0302", File, "matrix product sizes disagree",
"In A*B the number of columns of A must equal the number of rows of B. For an elementwise
product use `.*`.";
    IndexRank = "E0303", File, "wrong number of indices",
"A tensor of rank r takes exactly r indices (or slices `:` / `a..b`).";
    IndexOutOfRange = "E0304", File, "index out of range",
"An index can take a value outside 1..size for some value of the index variables in scope.
Indexing is 1-based and ranges a..b are inclusive.";
    ExpectedScalar = "E0305", File, "scalar expected",
"This position needs a scalar (an objective, a sum's range bound, an `if` condition, an option
value...). Reduce the tensor first, e.g. with sum(...), dot(...) or norm2(...).";
    NonAffineIndex = "E0306", File, "index must be affine in index variables",
"Indices and range bounds must be integer expressions of the form c + a*i + b*j with integer
constants, dims and index variables, e.g. `x[i+1]`, `X[i, n-j]`. Data-dependent indices are not
supported.";
    NonStaticRange = "E0307", File, "range is not static",
"The size of a comprehension or a slice must be known when the model is built: its bounds may
use numbers and dims, not index variables of an enclosing sum.";
    RaggedLiteral = "E0308", File, "ragged array literal",
"All elements of an array literal must have the same shape: [[1, 2], [3, 4]], not [[1, 2], [3]].";
    DimConflict = "E0309", File, "dim bound to two different sizes",
"A dim is given a size by a literal, a data file or --dim; two of these disagree.";
    UnboundDim = "E0310", File, "dim has no size",
"Every dim must get a size before anything uses it: `dim n = 10`, a data file with a declared
shape `param X: real[m, n] = load(\"X.csv\")`, or `--dim n=10` on the command line.";
    BadDim = "E0311", File, "invalid size",
"Sizes must be positive integers.";
    NotBoolean = "E0312", File, "comparison used as a value or value used as a condition",
"Comparisons (== <= >= < > !=) and and/or/not belong in `if` conditions, constraints and
conditions. Elsewhere use a value.";
    BadArgument = "E0313", File, "argument of the wrong kind",
"The argument has the wrong kind for this function, e.g. a number where a file name string is
expected, or an expression where the name of a var or param is expected.";
    NotSquareMatrix = "E0314", File, "square matrix expected",
"The function needs a square matrix (trace, the diagonal of a matrix...).";

    // ---- E04xx: data -------------------------------------------------------------------
    DataMissing = "E0401", NoInput, "data file cannot be read",
"The file named in load(\"...\") does not exist or cannot be read. Paths are relative to the .opt
file's folder.";
    DataCell = "E0402", Data, "data file has a cell that is not a number",
"Every cell of a CSV file must be a number (a single header row of names is allowed).";
    DataRagged = "E0403", Data, "data file has rows of different lengths",
"Every row of a CSV file must have the same number of cells.";
    DataShape = "E0404", Data, "data shape disagrees with the declaration",
"The data file's shape is not the declared shape. A CSV with one column or one row is a
vector; a CSV table of r rows and c columns is a matrix real[r, c].";
    DataJson = "E0405", Data, "malformed JSON data",
"A JSON data file must hold a number or nested arrays of numbers of a regular shape.";
    DataNonFinite = "E0406", Data, "data contains NaN or infinity",
"Data values must be finite numbers; the message names the first offending position.";
    BadSetValue = "E0407", Usage, "bad --set or --dim value",
"--set NAME=VALUE takes a number, a literal like [1, 2], or @file.csv; --dim NAME=SIZE takes a
positive integer; NAME must be a param (for --set) or a dim (for --dim) of the file.";
    LoadMisplaced = "E0408", File, "load(...) used outside a param or var declaration",
"load(\"file\") gives the value of a `param` or the initial value of a `var`; it cannot appear
inside other expressions.";
    DataEmpty = "E0409", Data, "data file is empty",
"The data file holds no numbers.";
    ParamOutOfBounds = "E0410", File, "param value outside its declared bounds",
"A param declared with `>= a`, `<= b` or `in [a, b]` (the box `tune` searches) must start
inside it: its default, loaded or --set value violates a bound. The message names the first
offending entry.";

    // ---- E05xx: the system of conditions ------------------------------------------------
    NotSquare = "E0501", File, "the system is not square",
"The conditions and the unknowns must be equal in number. Unknowns are the scalar entries of
every var plus one multiplier per equality constraint entry; equations come from `minimize`
(one per var entry), `lagrangian`, `condition` and `subject to`. The message counts both.";
    NothingToSolve = "E0502", File, "nothing to solve",
"`solve` needs at least one var and a minimize/maximize, lagrangian or condition.";
    StructurallySingular = "E0503", File, "the system is structurally singular",
"No matching of equations to unknowns exists: some equations do not involve enough distinct
unknowns. The message lists the equations and unknowns left unmatched.";
    UnusedVar = "E0504", File, "var does not appear in any condition",
"A var that no condition mentions cannot be determined.";
    ParamNoValue = "E0507", File, "param has no value",
"A param needs a default (`param a = 1`), data (`= load(\"a.csv\")`) or --set a=VALUE.";
    DependsOnVar = "E0508", File, "param value depends on a var",
"A param's default is computed once, before solving; it may use other params and dims but not
vars.";
    TooManyObjectives = "E0509", File, "more than one objective",
"A file has at most one minimize/maximize statement (tune has its own).";

    // ---- E06xx: solving and differentiating --------------------------------------------
    NotConverged = "E0601", Solver, "the solver did not converge",
"The solver stopped before the residual reached the tolerance. The message gives the last
residual. Try a better initial point (`var x = ...`), more iterations (`max_iter = ...`), or
another method.";
    SingularJacobian = "E0602", Derivative, "singular or ill-conditioned Jacobian",
"∂ₓF is singular (or numerically so) at the solution, so the implicit function theorem does
not give a unique derivative. A null space often comes from a symmetry (rigid motions: use
`newton(gauge = rigid)`), an unused var, or a redundant constraint.";
    WeaklyActive = "E0603", Derivative, "weakly active constraint",
"A constraint is active with a zero multiplier (no strict complementarity). The solution map
has a kink at these parameter values: its derivative does not exist.";
    NonContractive = "E0604", Solver, "fixed-point map is not contractive",
"The iteration x ← T(x) diverged or stalled. Reduce the step size inside T, or solve the
condition as a root with newton.";
    NumericalFault = "E0605", Solver, "numerical fault",
"An expression produced NaN or infinity (log of a negative number, division by zero, overflow).
The message names the expression and the first offending index.";
    Unsupported = "E0606", File, "not supported",
"The statement or option is recognised but this case is not supported; the message says which.";
    Infeasible = "E0607", Solver, "problem appears infeasible",
"The interior-point method could not reduce the constraint violation: the constraints may have
no common solution.";

    // ---- E08xx: usage --------------------------------------------------------------------
    Usage = "E0801", Usage, "command-line usage",
"The command line is not valid; see `optc --help`.";
    InputMissing = "E0802", NoInput, "input file cannot be read",
"The .opt file given on the command line does not exist or cannot be read.";
    LimitExceeded = "E0803", Limit, "a resource limit was exceeded",
"The model exceeds a configured limit (tensor size, expression size, data size, solver time).
The message names the limit; library users can raise it through the compile options.";

    // ---- W: warnings -------------------------------------------------------------------
    NotYetAvailable = "W0901", File, "statement not executed by this version",
"The statement is checked but this version of optc does not execute it; nothing is computed
for it and no value is invented. (Earlier versions gave it for periodic and penalty-Dirichlet
boundaries of pde blocks; every statement is executed now, and the code is kept reserved.)";
    UnusedName = "W0902", File, "declared but never used",
"A param, let or fn is declared but nothing uses it: often a typo in a later name. Remove it,
or use it.";
    NotElliptic = "W0903", File, "the pde Lagrangian is not convex in p",
"At some sampled (x, u, p) the Hessian ∂²L/∂p² of the pde block's Lagrangian is not positive
semidefinite: the Euler–Lagrange equation may not be elliptic and the energy may have no
minimum, so training can diverge or stall. The message gives the sampled point.";
    CoarseRule = "W0904", File, "the integration rule is too coarse for the trained network",
"The trained network's energy on a finer Gauss rule differs from its energy on the training
rule by more than 1e-6 of its size: the network has found detail between the rule's points
(it fits the quadrature, not the equation), and the reported errors may be far from the
training energy's promise. Train with more points (`samples`), a smaller width, or Sobol
points, which are drawn afresh every step.";
}
