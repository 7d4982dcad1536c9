import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;

/** The PostgreSQL JDBC driver against the gateway: java Login URL USER PASSWORD. */
public class Login {
    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0], args[1], args[2]);
             PreparedStatement st = c.prepareStatement("SELECT current_user, ? + 1")) {
            st.setInt(1, 41);
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                System.out.println(rs.getString(1) + " " + rs.getInt(2));
            }
        }
    }
}
