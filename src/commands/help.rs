//! `statectl completions SHELL` and `statectl man`: generated from the clap
//! definitions, so they always match the real commands and flags.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::Cli;

/// The shell's registration of statectl's completer: the shell then asks
/// `statectl` itself (`COMPLETE=SHELL statectl -- LINE`) at each <Tab>, so
/// tags, models and streams complete from the store.
pub fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let name = shell.to_string();
    let shells = clap_complete::env::Shells::builtins();
    let Some(completer) = shells.completer(&name) else {
        anyhow::bail!(
            "no completion for the shell '{name}'; use bash, zsh, fish, powershell or elvish"
        );
    };
    completer.write_registration(
        "COMPLETE",
        "statectl",
        "statectl",
        "statectl",
        &mut std::io::stdout(),
    )?;
    Ok(0)
}

/// statectl's page, or with `path` (`["model", "import"]`) the page
/// `statectl-model-import(1)` that the top page's SEE ALSO names.
pub fn man(path: &[String]) -> Result<i32> {
    let mut command = Cli::command();
    for (depth, name) in path.iter().enumerate() {
        let Some(sub) = command.find_subcommand(name).cloned() else {
            let names: Vec<String> = command
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            let parent = ["statectl"]
                .into_iter()
                .chain(path[..depth].iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            anyhow::bail!(
                "'{parent}' has no command '{name}'{}; its commands: {}",
                crate::suggest::did_you_mean(name, names.iter().map(String::as_str)),
                names.join(", ")
            );
        };
        command = sub;
    }
    if !path.is_empty() {
        let title = format!("statectl-{}", path.join("-"));
        command = command.name(title.clone()).bin_name(title);
    }
    clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
    Ok(0)
}
