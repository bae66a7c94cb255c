fn main() -> std::process::ExitCode {
    guarded_restart::main()
}
