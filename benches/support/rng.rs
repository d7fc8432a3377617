//! A small deterministic PRNG (xorshift64*), so runs are comparable. Shared by the bench
//! binaries through `#[path]` (a file in a subdirectory is not a bench target itself).

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
