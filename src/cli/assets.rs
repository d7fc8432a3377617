//! `filetrigger generate-assets DIR` (hidden): the shell completions and manual pages,
//! generated from the same clap definition as `--help`.
//!
//! Owns: writing `DIR/completions/{filetrigger.bash,_filetrigger,filetrigger.fish}` and
//! `DIR/man/filetrigger.1` plus one page per sub-command. The committed copies in
//! `config/packaging/` are what the `.deb` installs; `tests/packaging.rs` checks they are current.
//! Does not own: the definition itself (`cli`).

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// Runs `generate-assets`.
pub fn run(dir: &Path) -> ExitCode {
    match write(dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("filetrigger: generate-assets {}: {e}", dir.display());
            ExitCode::from(1)
        }
    }
}

fn write(dir: &Path) -> std::io::Result<()> {
    let completions = dir.join("completions");
    let man = dir.join("man");
    std::fs::create_dir_all(&completions)?;
    std::fs::create_dir_all(&man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut Cli::command(), "filetrigger", &completions)?;
    }
    // No date: the pages stay the same from one build to the next.
    clap_mangen::generate_to(Cli::command(), &man)
}
