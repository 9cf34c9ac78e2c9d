// Java 17's SunPKCS11 provider against sqlhsm, driven by tests/clients/java.sh. One JVM run per
// phase (JVM start-up is the slow part): `before` signs and encrypts with the key entry `signer`
// and writes an unsigned jar for jarsigner; `after` (a rotation later) checks that the key store
// holds exactly `signer` (the successor, with its new certificate) and the predecessor under its
// derived alias, signs with the successor, and checks that the predecessor still verifies and
// decrypts what it made before.
//
// Usage: java SqlhsmJava <provider config> <user PIN> <work dir> before
//        java SqlhsmJava <provider config> <user PIN> <work dir> after <predecessor's alias>

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.Security;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import javax.crypto.Cipher;

public class SqlhsmJava {
    static final String ALIAS = "signer";
    static final String SIG_ALG = "SHA256withRSA";
    static final String CIPHER = "RSA/ECB/PKCS1Padding";

    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            throw new IllegalArgumentException("usage: SqlhsmJava CONFIG PIN WORKDIR before|after [OLD_ALIAS]");
        }
        Provider p11 = Security.getProvider("SunPKCS11").configure(args[0]);
        Security.addProvider(p11);
        KeyStore ks = KeyStore.getInstance("PKCS11", p11);
        ks.load(null, args[1].toCharArray());
        Path work = Path.of(args[2]);
        List<String> aliases = new ArrayList<>(Collections.list(ks.aliases()));
        Collections.sort(aliases);
        System.out.println("key store aliases: " + aliases);
        byte[] data = Files.readAllBytes(work.resolve("data.bin"));
        switch (args[3]) {
            case "before" -> before(p11, ks, aliases, work, data);
            case "after" -> after(p11, ks, aliases, work, data, args[4]);
            default -> throw new IllegalArgumentException("phase " + args[3]);
        }
        System.out.println("java client " + args[3] + ": ALL OK");
    }

    static void before(Provider p11, KeyStore ks, List<String> aliases, Path work, byte[] data)
            throws Exception {
        check(aliases.equals(List.of(ALIAS)), "exactly one alias, " + ALIAS);
        check(ks.isKeyEntry(ALIAS), ALIAS + " is a key entry");
        PrivateKey key = (PrivateKey) ks.getKey(ALIAS, null);
        X509Certificate cert = (X509Certificate) ks.getCertificate(ALIAS);
        Files.write(work.resolve("java-cert-before.der"), cert.getEncoded());

        byte[] sig = sign(p11, key, data);
        Files.write(work.resolve("java-sig-before.bin"), sig);
        check(verifyInSoftware(cert.getPublicKey(), data, sig), "the signature verifies with the certificate");
        System.out.println("OK signed with " + ALIAS + " (" + key.getAlgorithm() + ")");

        // Encrypt in the token with the certificate's public key, decrypt with the private key.
        byte[] secret = "a secret for the key that will be rotated".getBytes(StandardCharsets.UTF_8);
        Cipher enc = Cipher.getInstance(CIPHER, p11);
        enc.init(Cipher.ENCRYPT_MODE, cert.getPublicKey());
        byte[] ct = enc.doFinal(secret);
        Files.write(work.resolve("java-secret.bin"), secret);
        Files.write(work.resolve("java-ct-before.bin"), ct);
        check(Arrays.equals(decrypt(p11, key, ct), secret), "the ciphertext decrypts");
        System.out.println("OK encrypted and decrypted with " + ALIAS);

        writeJar(work.resolve("app-before.jar"), "made before the rotation");
    }

    static void after(Provider p11, KeyStore ks, List<String> aliases, Path work, byte[] data,
            String oldAlias) throws Exception {
        List<String> want = new ArrayList<>(List.of(ALIAS, oldAlias));
        Collections.sort(want);
        check(aliases.equals(want), "aliases are exactly " + want);
        check(ks.isKeyEntry(ALIAS) && ks.isKeyEntry(oldAlias), "both are key entries");

        PrivateKey key = (PrivateKey) ks.getKey(ALIAS, null);
        X509Certificate cert = (X509Certificate) ks.getCertificate(ALIAS);
        X509Certificate oldCert = (X509Certificate) ks.getCertificate(oldAlias);
        byte[] certBefore = Files.readAllBytes(work.resolve("java-cert-before.der"));
        check(Arrays.equals(oldCert.getEncoded(), certBefore), oldAlias + " carries the certificate " + ALIAS + " had");
        check(!Arrays.equals(cert.getEncoded(), certBefore), ALIAS + " carries a new certificate");
        Files.write(work.resolve("java-cert-after.der"), cert.getEncoded());

        byte[] sig = sign(p11, key, data);
        Files.write(work.resolve("java-sig-after.bin"), sig);
        check(verifyInSoftware(cert.getPublicKey(), data, sig), "the successor's signature verifies with its certificate");
        check(!verifyInSoftware(oldCert.getPublicKey(), data, sig), "... and not with the predecessor's");
        System.out.println("OK signed with " + ALIAS + " (the successor)");

        byte[] oldSig = Files.readAllBytes(work.resolve("java-sig-before.bin"));
        check(verifyInSoftware(oldCert.getPublicKey(), data, oldSig), "the old signature verifies with " + oldAlias);
        check(!verifyInSoftware(cert.getPublicKey(), data, oldSig), "... and not with the successor's certificate");
        System.out.println("OK the old signature verifies with the certificate of " + oldAlias);

        PrivateKey oldKey = (PrivateKey) ks.getKey(oldAlias, null);
        byte[] secret = Files.readAllBytes(work.resolve("java-secret.bin"));
        byte[] ct = Files.readAllBytes(work.resolve("java-ct-before.bin"));
        check(Arrays.equals(decrypt(p11, oldKey, ct), secret), "the old ciphertext decrypts with " + oldAlias);
        System.out.println("OK the old ciphertext decrypts with " + oldAlias);

        // The predecessor is Inactive: it verifies and decrypts but no longer signs.
        boolean refused;
        try {
            sign(p11, oldKey, data);
            refused = false;
        } catch (java.security.GeneralSecurityException | java.security.ProviderException e) {
            System.out.println("the predecessor refuses to sign, as it should: " + e);
            refused = true;
        }
        check(refused, oldAlias + " (Inactive) refuses to sign");

        writeJar(work.resolve("app-after.jar"), "made after the rotation");
    }

    static byte[] sign(Provider p11, PrivateKey key, byte[] data) throws Exception {
        Signature s = Signature.getInstance(SIG_ALG, p11);
        s.initSign(key);
        s.update(data);
        return s.sign();
    }

    static byte[] decrypt(Provider p11, PrivateKey key, byte[] ct) throws Exception {
        Cipher dec = Cipher.getInstance(CIPHER, p11);
        dec.init(Cipher.DECRYPT_MODE, key);
        return dec.doFinal(ct);
    }

    /** Verification by the JDK's own RSA provider, so the token is not judging itself. */
    static boolean verifyInSoftware(PublicKey key, byte[] data, byte[] sig) throws Exception {
        Signature v = Signature.getInstance(SIG_ALG, "SunRsaSign");
        v.initVerify(key);
        v.update(data);
        return v.verify(sig);
    }

    static void writeJar(Path jar, String text) throws Exception {
        Manifest manifest = new Manifest();
        manifest.getMainAttributes().putValue("Manifest-Version", "1.0");
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar), manifest)) {
            out.putNextEntry(new JarEntry("hello.txt"));
            out.write(text.getBytes(StandardCharsets.UTF_8));
            out.closeEntry();
        }
    }

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError("FAILED: " + what);
        }
    }
}
