//! `ej talk`: a plain TCP client for trying a handler by hand, the same on
//! every system: it writes the given text, prints what comes back, and
//! stops once the server has been quiet for a moment (or has closed).

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context as _, Result};

/// Connects to `addr`, writes each of `texts` in turn (stdin when there is
/// none), and copies what the server sends to stdout until it has sent
/// nothing for `quiet` or has closed the connection. Ends the output with a
/// newline when there was any.
pub fn talk(addr: &str, texts: &[String], quiet: Duration) -> Result<()> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    if texts.is_empty() {
        std::io::copy(&mut std::io::stdin().lock(), &mut stream).context("sending stdin")?;
    }
    for text in texts {
        stream.write_all(text.as_bytes()).context("sending")?;
    }
    stream.set_read_timeout(Some(quiet))?;
    let mut stdout = std::io::stdout().lock();
    let mut buf = [0; 16 * 1024];
    let mut printed = false;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                stdout.write_all(&buf[..n])?;
                stdout.flush()?;
                printed = true;
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error).context("reading"),
        }
    }
    if printed {
        writeln!(stdout)?;
    }
    Ok(())
}
