pub use crate::backup::run;
