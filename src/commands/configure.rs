pub use crate::configure::run;
