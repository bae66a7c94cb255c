fn main() {
    afl::fuzz!(|data: &[u8]| guarded_restart::fuzzing::pidfile(data));
}
