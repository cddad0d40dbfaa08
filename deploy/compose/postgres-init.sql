-- One database per service: each service owns its data (DESIGN §3).
CREATE DATABASE voc_feedback;
CREATE DATABASE voc_profile;
CREATE DATABASE voc_actions;
CREATE DATABASE voc_notify;
