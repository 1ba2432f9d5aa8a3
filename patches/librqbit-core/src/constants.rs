pub const CHUNK_SIZE: u32 = 16384;
