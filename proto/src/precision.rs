//! The floating-point type a job's model computes in (`JobSpec.precision`,
//! config `precision`, `--precision`): one list of names for every crate.

/// The floating-point type a model computes in. Attention always reaches the
/// analysis as f32; bf16 trades the last digits of each weight for the GPU's
/// bf16 tensor-core rate (its counts are within the tolerance BENCHMARKS.md
/// documents, not equal).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precision {
    /// IEEE single precision, equal to transformers to 1e-5 (the default).
    #[default]
    F32,
    /// bfloat16 weights and activations.
    Bf16,
}

impl Precision {
    /// The names a job, config or flag may give.
    pub const NAMES: [&'static str; 2] = ["f32", "bf16"];

    /// Parses a precision name (`""`, a job's unset field, is f32).
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "" | "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(format!("unknown precision `{other}` (expected f32 or bf16)")),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
