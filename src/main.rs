//! The `castellan` binary: parse the command line, load settings, start logging, dispatch.

use clap::Parser;

use castellan::cli::{self, Cli, CliError};

fn main() {
    let cli = Cli::parse();
    let settings = match cli.settings() {
        Ok(s) => s,
        Err(e) => exit(&CliError::Config(e)),
    };
    let filter = if cli.is_serve() || std::env::var_os("CASTELLAN_LOG").is_some() {
        settings.log.filter.clone()
    } else {
        "warn".to_owned()
    };
    castellan::telemetry::init(&filter, &settings.log.format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => exit(&CliError::Failed(anyhow::anyhow!(
            "cannot start the async runtime: {e}"
        ))),
    };
    if let Err(e) = runtime.block_on(cli::run(cli, settings)) {
        exit(&e);
    }
}

fn exit(e: &CliError) -> ! {
    eprintln!("castellan: {e}");
    std::process::exit(e.exit_code());
}
