//! The `rsvpd` command line: parse arguments, call one function per subcommand,
//! print the whole error chain and exit non-zero on failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};
use rsvpd::commands::{self, AddArgs};
use rsvpd::output::{Format, ListFormat};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  error (the message names the problem and, where there is one, the fix)
  2  wrong command line

Logs go to stderr (with <N> priorities when stderr is the systemd journal, colour only on a
terminal); RSVPD_LOG sets the level (e.g. debug), RSVPD_LOG_FORMAT=json prints JSON.";

#[derive(Parser)]
#[command(name = "rsvpd", version, about = "Event registration by email: reads the registration mailbox, records attendees, answers them.", after_help = EXIT_CODES)]
struct Cli {
    /// Config file [default: $RSVPD_CONFIG, then /etc/rsvpd/rsvpd.toml]
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (until SIGTERM/SIGINT)
    Run {
        /// Drain the mailbox, the due schedules and the due outbox, then exit
        #[arg(long)]
        once: bool,
    },
    /// Validate the config and reach the mailbox, the SMTP server and the database
    Check {
        /// Check the config, templates, CA and password files without contacting any server
        #[arg(long)]
        offline: bool,
    },
    /// Feed .eml or mbox files through the same pipeline as the mailbox
    Ingest {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the configured conferences with their numbers
    Conferences {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// List the attendees of a conference
    Attendees {
        conference: String,
        /// Include cancelled registrations
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// The messages that need a human
    Review {
        #[command(subcommand)]
        action: Option<ReviewAction>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Outgoing mail and its state
    Outbox {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Register someone by hand (they get the same mail as by writing)
    Add {
        conference: String,
        email: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        organization: Option<String>,
        /// People in the party, the attendee included
        #[arg(long, default_value_t = 1)]
        party_size: u32,
        /// Workshop id (repeatable)
        #[arg(long = "workshop")]
        workshops: Vec<String>,
        /// A note for the organizers (repeatable)
        #[arg(long = "note")]
        notes: Vec<String>,
        /// de or en [default: defaults.language]
        #[arg(long)]
        language: Option<String>,
        /// Confirm even over capacity
        #[arg(long)]
        force: bool,
    },
    /// Cancel someone's registration by hand
    Cancel { conference: String, email: String },
    /// Send a mail to every attendee, one mail each, filled with their name
    Send {
        conference: String,
        /// The subject; placeholders such as {{ conference.title }} work here too
        #[arg(long)]
        subject: String,
        /// A UTF-8 text file with the body; {{ name }} etc. are filled per attendee
        #[arg(long)]
        body_file: PathBuf,
        /// Comma-separated statuses to write to [default: confirmed,waitlisted]
        #[arg(long)]
        status: Option<String>,
        /// Print the count and one rendered sample; queue nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Everything stored about an address, as JSON (DSGVO Art. 15)
    Person { email: String },
    /// Erase everything stored about an address (DSGVO Art. 17)
    Forget {
        email: String,
        /// List what would be erased; erase nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a commented example config
    DefaultConfig,
    /// Read a password on stdin, print an argon2id hash for [[web.user]] password_hash
    HashPassword,
    /// Write the man pages and shell completions into DIR (for packaging)
    #[command(hide = true)]
    GenerateAssets { dir: PathBuf },
}

#[derive(Subcommand)]
enum ReviewAction {
    /// Process the message as a registration for CONFERENCE and answer it
    Assign { id: i64, conference: String },
    /// Close the item without action
    Dismiss { id: i64 },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    rsvpd::memory::tune_allocator();
    rsvpd::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rsvpd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let path = rsvpd::config::resolve_path(cli.config.as_deref());
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run { once } => commands::run(&path, once).await,
            Command::Check { offline } => commands::check(&path, offline).await,
            Command::Ingest { files } => commands::ingest(&path, &files).await,
            Command::Conferences { format } => commands::conferences(&path, format.into()).await,
            Command::Attendees {
                conference,
                all,
                format,
            } => commands::attendees(&path, &conference, all, format).await,
            Command::Review {
                action: None,
                format,
            } => commands::review_list(&path, format.into()).await,
            Command::Review {
                action: Some(ReviewAction::Assign { id, conference }),
                ..
            } => commands::review_assign(&path, id, &conference).await,
            Command::Review {
                action: Some(ReviewAction::Dismiss { id }),
                ..
            } => commands::review_dismiss(&path, id).await,
            Command::Outbox { format } => commands::outbox(&path, format.into()).await,
            Command::Add {
                conference,
                email,
                name,
                organization,
                party_size,
                workshops,
                notes,
                language,
                force,
            } => {
                let args = AddArgs {
                    name,
                    organization,
                    party_size,
                    workshops,
                    notes,
                    language,
                    force,
                };
                commands::add(&path, &conference, &email, args).await
            }
            Command::Cancel { conference, email } => {
                commands::cancel(&path, &conference, &email).await
            }
            Command::Send {
                conference,
                subject,
                body_file,
                status,
                dry_run,
            } => {
                commands::send(
                    &path,
                    &conference,
                    &subject,
                    &body_file,
                    status.as_deref(),
                    dry_run,
                )
                .await
            }
            Command::Person { email } => commands::person(&path, &email).await,
            Command::Forget { email, dry_run } => commands::forget(&path, &email, dry_run).await,
            Command::DefaultConfig => commands::default_config(),
            Command::HashPassword => commands::hash_password(),
            Command::GenerateAssets { dir } => rsvpd::assets::write(Cli::command(), &dir),
        }
    });
    // Blocking IMAP threads may sit in IDLE; do not wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `rsvpd attendees … | head -1`: the reader has what it wanted.
        Err(e) if rsvpd::output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rsvpd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
