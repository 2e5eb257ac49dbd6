//! Hasher configuration: algorithm, release, seed and extra-key schema.

use std::fmt;
use std::str::FromStr;

use super::error::HashError;

/// vLLM's `--prefix-caching-hash-algo` values that can be reproduced (SPEC §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgo {
    /// SHA-256 over pickle protocol 5 (default from vLLM 0.10.2).
    Sha256,
    /// SHA-256 over canonical CBOR.
    Sha256Cbor,
    /// XXH3-128 over pickle protocol 5 (vLLM 0.13.0+).
    Xxhash,
    /// XXH3-128 over canonical CBOR (vLLM 0.13.0+).
    XxhashCbor,
    /// Legacy: last 8 bytes of SHA-256 over CBOR as an integer (vLLM 0.10.0-0.10.1.1).
    Sha256Cbor64Bit,
}

impl HashAlgo {
    /// Every algorithm, in the order of SPEC §2.2.
    pub const ALL: [HashAlgo; 5] = [
        HashAlgo::Sha256,
        HashAlgo::Sha256Cbor,
        HashAlgo::Xxhash,
        HashAlgo::XxhashCbor,
        HashAlgo::Sha256Cbor64Bit,
    ];

    /// vLLM's name of the algorithm.
    pub const fn as_str(self) -> &'static str {
        match self {
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha256Cbor => "sha256_cbor",
            HashAlgo::Xxhash => "xxhash",
            HashAlgo::XxhashCbor => "xxhash_cbor",
            HashAlgo::Sha256Cbor64Bit => "sha256_cbor_64bit",
        }
    }

    /// Whether payloads are pickled (otherwise CBOR-encoded).
    pub const fn uses_pickle(self) -> bool {
        matches!(self, HashAlgo::Sha256 | HashAlgo::Xxhash)
    }

    /// Length in bytes of the chained digest.
    pub const fn digest_len(self) -> usize {
        match self {
            HashAlgo::Sha256 | HashAlgo::Sha256Cbor => 32,
            HashAlgo::Xxhash | HashAlgo::XxhashCbor => 16,
            HashAlgo::Sha256Cbor64Bit => 8,
        }
    }

    /// Whether `version` offers this algorithm with the semantics reproduced here.
    pub fn available_in(self, version: VllmVersion) -> bool {
        match self {
            HashAlgo::Sha256Cbor64Bit => version < VllmVersion::new(0, 10, 2),
            HashAlgo::Sha256 | HashAlgo::Sha256Cbor => version >= VllmVersion::new(0, 10, 2),
            HashAlgo::Xxhash | HashAlgo::XxhashCbor => version >= VllmVersion::new(0, 13, 0),
        }
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HashAlgo {
    type Err = HashError;

    fn from_str(s: &str) -> Result<Self, HashError> {
        HashAlgo::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| HashError::UnknownAlgo(s.to_owned()))
    }
}

/// Shapes of the per-block extra keys (SPEC §2.5), named after the first release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtraKeySchema {
    /// vLLM ≤ 0.11.0: LoRA int id, mm identifiers, salt.
    V0_11_0,
    /// vLLM 0.11.1 – 0.18.1: LoRA name, mm identifiers, salt, prompt embeddings.
    V0_11_1,
    /// vLLM 0.19.0 – 0.30.0: mm items as `(identifier, offset - start)`.
    V0_19,
    /// vLLM 0.31.0+: tagged tuples.
    V0_31,
}

impl ExtraKeySchema {
    /// The schema's name as used in `vectors.json`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExtraKeySchema::V0_11_0 => "0.11.0",
            ExtraKeySchema::V0_11_1 => "0.11.1",
            ExtraKeySchema::V0_19 => "0.19",
            ExtraKeySchema::V0_31 => "0.31",
        }
    }

    /// The schema a release uses.
    pub fn for_version(version: VllmVersion) -> Self {
        if version >= VllmVersion::new(0, 31, 0) {
            ExtraKeySchema::V0_31
        } else if version >= VllmVersion::new(0, 19, 0) {
            ExtraKeySchema::V0_19
        } else if version >= VllmVersion::new(0, 11, 1) {
            ExtraKeySchema::V0_11_1
        } else {
            ExtraKeySchema::V0_11_0
        }
    }
}

impl fmt::Display for ExtraKeySchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A vLLM release number; `post` is the fourth component of releases such as 0.10.1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VllmVersion {
    /// Major component.
    pub major: u32,
    /// Minor component.
    pub minor: u32,
    /// Patch component.
    pub patch: u32,
    /// Fourth component (0 for ordinary releases).
    pub post: u32,
}

impl VllmVersion {
    /// The oldest release reproduced (first with `sha256_cbor_64bit`).
    pub const OLDEST: VllmVersion = VllmVersion::new(0, 10, 0);
    /// The newest release covered by the specification; the default.
    pub const NEWEST: VllmVersion = VllmVersion::new(0, 33, 0);

    /// A three-component version.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        VllmVersion {
            major,
            minor,
            patch,
            post: 0,
        }
    }

    /// Whether this crate reproduces the release's hashes.
    pub fn is_supported(self) -> bool {
        (Self::OLDEST..=Self::NEWEST).contains(&self)
    }
}

impl Default for VllmVersion {
    fn default() -> Self {
        Self::NEWEST
    }
}

impl fmt::Display for VllmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if self.post != 0 {
            write!(f, ".{}", self.post)?;
        }
        Ok(())
    }
}

impl FromStr for VllmVersion {
    type Err = HashError;

    /// Parses `0.33.0`, `0.10.1.1`, `v0.33.0` or `0.33`; a local suffix
    /// (`+cu128`) is ignored. Does not check the supported range.
    fn from_str(s: &str) -> Result<Self, HashError> {
        let invalid = || HashError::InvalidVersion(s.to_owned());
        let core = s.split('+').next().unwrap_or(s);
        let core = core.strip_prefix('v').unwrap_or(core);
        let mut parts = [0u32; 4];
        let mut count = 0;
        for part in core.split('.') {
            let slot = parts.get_mut(count).ok_or_else(invalid)?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            *slot = part.parse().map_err(|_| invalid())?;
            count += 1;
        }
        if count < 2 {
            return Err(invalid());
        }
        let [major, minor, patch, post] = parts;
        Ok(VllmVersion {
            major,
            minor,
            patch,
            post,
        })
    }
}

/// Everything that determines a block hash besides the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HasherConfig {
    /// The engines' `--prefix-caching-hash-algo`.
    pub algo: HashAlgo,
    /// Hash block size in tokens (SPEC §2.7), at least 1.
    pub block_size: usize,
    /// The engines' `PYTHONHASHSEED`; `None` when unset (only reproducible on 0.29+
    /// with `sha256` / `sha256_cbor`). `Some("")` is a set, empty seed.
    pub seed: Option<String>,
    /// Extra-key shapes; must be the schema of `vllm_version`.
    pub schema: ExtraKeySchema,
    /// The engines' release.
    pub vllm_version: VllmVersion,
}

impl HasherConfig {
    /// A configuration for vLLM `version` (`"latest"` = 0.33.0): picks the schema
    /// and checks that the algorithm and seed are reproducible there.
    pub fn for_vllm(
        version: &str,
        algo: HashAlgo,
        block_size: usize,
        seed: Option<&str>,
    ) -> Result<Self, HashError> {
        let vllm_version = if version == "latest" {
            VllmVersion::NEWEST
        } else {
            version.parse()?
        };
        let cfg = HasherConfig {
            algo,
            block_size,
            seed: seed.map(str::to_owned),
            schema: ExtraKeySchema::for_version(vllm_version),
            vllm_version,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the configuration; `BlockHasher::new` calls this.
    pub fn validate(&self) -> Result<(), HashError> {
        let version = self.vllm_version;
        if self.block_size == 0 {
            return Err(HashError::ZeroBlockSize);
        }
        if !version.is_supported() {
            return Err(HashError::UnsupportedVersion(version));
        }
        if !self.algo.available_in(version) {
            return Err(HashError::AlgoNotAvailable {
                algo: self.algo,
                version,
            });
        }
        let expected = ExtraKeySchema::for_version(version);
        if self.schema != expected {
            return Err(HashError::SchemaMismatch {
                schema: self.schema.as_str(),
                expected: expected.as_str(),
                version,
            });
        }
        self.effective_seed().map(|_| ())
    }

    /// The string hashed into NONE_HASH (SPEC §2.4).
    pub fn effective_seed(&self) -> Result<&str, HashError> {
        match &self.seed {
            Some(seed) => Ok(seed),
            None if self.vllm_version >= VllmVersion::new(0, 29, 0)
                && matches!(self.algo, HashAlgo::Sha256 | HashAlgo::Sha256Cbor) =>
            {
                Ok(UNSET_SEED)
            }
            None => Err(HashError::RandomNoneHash {
                algo: self.algo,
                version: self.vllm_version,
            }),
        }
    }
}

/// What vLLM 0.29+ hashes for NONE_HASH when `PYTHONHASHSEED` is unset.
pub const UNSET_SEED: &str = "vllm-none-hash";

impl Default for HasherConfig {
    /// vLLM 0.33.0 defaults: `sha256`, block size 16, seed unset.
    fn default() -> Self {
        HasherConfig {
            algo: HashAlgo::Sha256,
            block_size: 16,
            seed: None,
            schema: ExtraKeySchema::V0_31,
            vllm_version: VllmVersion::NEWEST,
        }
    }
}
