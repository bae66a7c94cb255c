fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            guarded_restart::fuzzing::timestamp(text);
        }
    });
}
