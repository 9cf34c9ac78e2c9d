//! Configuration (placeholder until the storage branch lands).
#[derive(Clone, Debug)]
pub struct Config {
    pub database: DatabaseConfig,
    pub security: SecurityConfig,
    pub log: LogConfig,
}
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    pub url: String,
    pub busy_timeout_ms: u64,
}
#[derive(Clone, Debug)]
pub struct SecurityConfig {
    pub max_pin_failures: u32,
    pub pin_kdf_log_n: u8,
    pub min_pin_len: usize,
    pub max_pin_len: usize,
}
#[derive(Clone, Debug)]
pub struct LogConfig {
    pub level: String,
}
impl Config {
    pub fn load() -> crate::Result<Config> {
        todo!()
    }
}
