//! `wharf user app-password add|list|revoke`: an account's app passwords from the command line,
//! through the same operations as the web self-service page and the admin REST API
//! (`ops::app_passwords`).

use anyhow::Result;
use wharf_directory::Directory;

use crate::cli::AppPasswordCmd;
use crate::ops;

pub async fn run(dir: &Directory, cmd: AppPasswordCmd) -> Result<()> {
    match cmd {
        AppPasswordCmd::Add { address, label } => {
            let created = ops::app_passwords::create(dir, &address, &label).await?;
            println!(
                "app password {} ({}) created for {}",
                created.app_password.id,
                created.app_password.label,
                address.trim()
            );
            println!("secret (shown only this once): {}", created.secret);
        }
        AppPasswordCmd::List { address } => {
            for a in ops::app_passwords::list(dir, &address).await? {
                println!(
                    "{}\t{}\tcreated {}\tlast used {}",
                    a.id,
                    a.label,
                    a.created_at,
                    a.last_used_at.as_deref().unwrap_or("never")
                );
            }
        }
        AppPasswordCmd::Revoke { address, id } => {
            ops::app_passwords::revoke(dir, &address, id).await?;
            println!("app password {id} of {} revoked", address.trim());
        }
    }
    Ok(())
}
