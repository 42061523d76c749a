//! The kflite operator CLI.
