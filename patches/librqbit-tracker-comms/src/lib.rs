mod tracker_comms;
mod tracker_comms_http;
mod tracker_comms_udp;

pub use tracker_comms::*;
pub use tracker_comms_udp::UdpTrackerClient;
